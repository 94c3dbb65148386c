"""What a local file is to S3: its digests (read in constant memory, also per part), the
composite checksum and multipart ETag S3 gives it, and its content type by name.

Core: used by the worker (push), the server (content types, composite checksums) and
``sign --file``."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable, Sequence
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


_FIRST_READ = 64 * 1024
_BLOCK = 256 * 1024  # eight parts hashed at once hold 2 MiB


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


def file_digest(path: str | os.PathLike[str], algorithm: Literal["sha256", "md5"]) -> str:
    """The base64 digest of a file, read in chunks (memory does not grow with its size).

    Most artifacts are small: one read of up to 64 KiB covers them, without
    the 256 KiB buffer ``hashlib.file_digest`` sets up for every file.
    """
    with open(path, "rb", buffering=0) as handle:
        block = handle.read(_FIRST_READ)
        digest = hashlib.new(algorithm, block)
        if len(block) == _FIRST_READ:
            hashlib.file_digest(handle, lambda: digest)  # the rest, in the same digest
    return base64.b64encode(digest.digest()).decode()


def range_digest(path: str, offset: int, length: int, algorithm: Literal["sha256", "md5"]) -> str:
    """The base64 digest of ``length`` bytes from ``offset`` (a multipart part), read in 256 KiB
    blocks; ``EOFError`` when the file ends first."""
    digest = hashlib.new(algorithm)
    block = bytearray(min(length, _BLOCK))
    view = memoryview(block)
    with open(path, "rb", buffering=0) as handle:
        handle.seek(offset)
        while length:
            got = handle.readinto(view[: min(length, _BLOCK)])
            if not got:
                raise EOFError(path)
            digest.update(view[:got])
            length -= got
    return base64.b64encode(digest.digest()).decode()


def sha256_with_parts(path: str, part_size: int, on_part: Callable[[int, str], None]) -> str:
    """The base64 SHA-256 of a whole file, and of each ``part_size`` part of it, in one pass:
    ``on_part(number, digest)`` as each part ends (numbers from 1)."""
    whole, part, number, left = hashlib.sha256(), hashlib.sha256(), 1, part_size
    block = bytearray(_BLOCK)
    view = memoryview(block)
    with open(path, "rb", buffering=0) as handle:
        while got := handle.readinto(view[: min(left, _BLOCK)]):
            whole.update(view[:got])
            part.update(view[:got])
            left -= got
            if not left:
                on_part(number, base64.b64encode(part.digest()).decode())
                part, number, left = hashlib.sha256(), number + 1, part_size
    if left < part_size:  # the last, shorter part
        on_part(number, base64.b64encode(part.digest()).decode())
    return base64.b64encode(whole.digest()).decode()


def digest_file(path: Path, algorithm: Literal["sha256", "md5"]) -> str:
    """``file_digest``, with an unreadable file as a ``UsageError`` (exit 2)."""
    try:
        return file_digest(path, algorithm)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None


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


def composite_sha256(part_digests: Sequence[str]) -> str:
    """S3's checksum of a multipart object whose parts carried SHA-256s (base64): the
    SHA-256 of the parts' digests, then ``-`` and the part count."""
    joined = b"".join(base64.b64decode(digest) for digest in part_digests)
    return f"{base64.b64encode(hashlib.sha256(joined).digest()).decode()}-{len(part_digests)}"


def multipart_etag(path: str, part_size: int) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' MD5s, then ``-COUNT``. Each
    part is read in blocks (``range_digest``), not whole: parts grow to 512 MiB and more.
    A file that shrinks while it is read has no such ETag: ``""``."""
    size = os.stat(path).st_size
    try:
        digests = [
            base64.b64decode(range_digest(path, offset, min(part_size, size - offset), "md5"))
            for offset in range(0, size, part_size)
        ]
    except EOFError:
        return ""
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"
