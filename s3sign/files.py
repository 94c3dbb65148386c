"""Local files as uploads see them: size, content type and checksum, read in constant memory."""

from __future__ import annotations

import base64
import hashlib
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from s3sign.config import Checksum
from s3sign.errors import UsageError

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class FileFacts:
    """What a signer needs to know about a file; checksums are base64."""

    path: Path
    size: int
    content_type: str
    sha256: str | None = None
    md5: str | None = None


def guess_content_type(name: str) -> str:
    """The MIME type for a file name, ``application/octet-stream`` when unknown."""
    dotted = name.rsplit("/", 1)[-1].lower().lstrip(".").split(".")[1:]
    return _type_for_suffixes("".join(f".{suffix}" for suffix in dotted[-2:]))  # .json, .json.gz


@lru_cache(maxsize=512)  # a server guesses for thousands of names with few suffixes
def _type_for_suffixes(suffixes: str) -> str:
    import mimetypes  # reads the system's MIME tables: only when a file is involved

    guessed, encoding = mimetypes.guess_type("name" + suffixes, strict=False)
    if encoding is not None:  # report.json.gz is a gzip file, not JSON
        return {
            "gzip": "application/gzip",
            "bzip2": "application/x-bzip2",
            "xz": "application/x-xz",
        }.get(encoding, DEFAULT_CONTENT_TYPE)
    return guessed or DEFAULT_CONTENT_TYPE


def regular_file_size(path: Path) -> int:
    """The size of a readable regular file; ``UsageError`` (exit 2) for anything else."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", hint="check the path") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{path} is a directory", hint="give a file")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is not a regular file", hint="give a file")
    try:
        path.open("rb").close()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None
    return info.st_size


def digest_file(path: Path, algorithm: Literal["sha256", "md5"]) -> str:
    """The base64 digest of a file, read in chunks (memory does not grow with its size)."""
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, algorithm)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None
    return base64.b64encode(digest.digest()).decode()


def file_facts(path: Path, checksum: Checksum) -> FileFacts:
    """Size, guessed content type and the chosen checksum of one regular file."""
    size = regular_file_size(path)
    return FileFacts(
        path=path,
        size=size,
        content_type=guess_content_type(path.name),
        sha256=digest_file(path, "sha256") if checksum == "sha256" else None,
        md5=digest_file(path, "md5") if checksum == "md5" else None,
    )
