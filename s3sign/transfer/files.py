"""Local files as uploads see them: size, content type and checksum, read in constant memory."""

from __future__ import annotations

import base64
import glob
import hashlib
import itertools
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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


# --- paths, directories and globs -> the files a push uploads ---------------------------

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class LocalFile:
    """One file to upload: where it is, the name the backend sees, and its state when listed."""

    path: str  # a plain string: cheaper than a Path for each of 10,000 files
    name: str  # relative to the base directory, "/"-separated
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Expansion:
    """The files paths expanded to, the paths that matched none, and what was left out."""

    files: tuple[LocalFile, ...]
    unmatched: tuple[str, ...]
    hidden: tuple[str, ...] = ()  # found by a walk or a glob, named with a leading "."
    outside: tuple[str, ...] = ()  # symlinks whose target is outside the base directory
    excluded: tuple[str, ...] = ()  # names the ``excluded`` test took out


@dataclass
class _Rules:
    """What a walk or a glob leaves out, and a note of each thing it left out."""

    base: str  # the base directory, resolved
    include_hidden: bool
    follow_symlinks: bool
    hidden: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def left_out(self) -> int:
        return len(self.hidden) + len(self.outside)

    def keeps(self, path: str, name: str) -> bool:
        """May a found ``path`` (its last part ``name``) be pushed?"""
        if name.startswith(".") and not self.include_hidden:
            self.hidden.append(path)
            return False
        if not self.follow_symlinks and os.path.islink(path):
            target = os.path.realpath(path)
            if target != self.base and not target.startswith(self.base.rstrip(os.sep) + os.sep):
                self.outside.append(path)
                return False
        return True


def expand_paths(
    paths: list[str],
    base: Path,
    *,
    literal: bool = False,
    listed: Sequence[str] = (),
    include_hidden: bool = False,
    follow_symlinks: bool = False,
    excluded: Callable[[str], bool] | None = None,
) -> Expansion:
    """Files, directories (recursively) and globs (``*``, ``?``, ``[...]``, ``**``) -> files.

    Globs are expanded here when the shell did not (quoted patterns); with
    ``literal`` every path is taken as written, as ``listed`` ones (``--files-from``)
    always are. Symlinked directories are never descended into (so nothing
    outside the tree is reached through them); symlinks to regular files are
    followed while their target is inside ``base`` (any, with ``follow_symlinks``);
    sockets, FIFOs and devices are skipped. What a walk or a glob finds with a
    name that starts with "." (``.git``, ``.env``) is left out unless
    ``include_hidden``, as GitHub's upload-artifact does; a path named as it is
    is always taken. ``excluded`` takes out the names (relative to ``base``, "/"
    between folders) for which it is true: ``--exclude`` patterns. Names are
    relative to ``base``; a file outside it is a ``UsageError``. A file named
    twice is listed once.
    """
    base_abs = os.path.abspath(base)
    if not os.path.isdir(base_abs):
        raise UsageError(f"--base {base} is not a directory", hint="give an existing directory")
    rules = _Rules(os.path.realpath(base_abs), include_hidden, follow_symlinks)
    found: dict[str, LocalFile] = {}
    unmatched: list[str] = []
    dropped: dict[str, None] = {}  # excluded names, in order, once each
    for index, raw in enumerate(itertools.chain(paths, listed)):
        is_pattern = (
            not literal
            and index < len(paths)
            and bool(_GLOB_CHARS & set(raw))
            and not os.path.lexists(raw)
        )
        candidates = sorted(glob.glob(raw, recursive=True)) if is_pattern else [raw]
        produced, left_out = 0, rules.left_out()
        for candidate in candidates:
            if is_pattern and _through_symlinked_dir(candidate, raw):
                continue
            absolute = os.path.abspath(candidate)
            if is_pattern and not rules.keeps(absolute, os.path.basename(absolute)):
                continue
            for path, info in _walk(absolute, rules):
                produced += 1
                if path in found:
                    continue
                local = _local_file(path, info, base_abs)
                if excluded is not None and excluded(local.name):
                    dropped[local.name] = None
                else:
                    found[path] = local
        if not produced and rules.left_out() == left_out:  # left out is not unmatched
            unmatched.append(raw)
    return Expansion(
        tuple(found.values()),
        tuple(unmatched),
        tuple(_relative(path, base_abs) for path in rules.hidden),
        tuple(_relative(path, base_abs) for path in rules.outside),
        tuple(dropped),
    )


def _walk(path: str, rules: _Rules) -> Iterator[tuple[str, os.stat_result]]:
    """A file as itself; a directory as its regular files, recursively, in name order.

    One ``stat`` per file (``scandir`` entries): listing 10,000 files takes
    tens of milliseconds, not a noticeable part of the push.
    """
    try:
        info = os.stat(path)  # follows a symlink to its file
        linked = os.path.islink(path)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode):
        yield path, info
    elif stat.S_ISDIR(info.st_mode) and not linked:  # never descend a symlinked directory
        yield from _walk_directory(path, rules)


def _walk_directory(directory: str, rules: _Rules) -> Iterator[tuple[str, os.stat_result]]:
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return  # unreadable: as os.walk, skip it
    subdirectories = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if rules.keeps(entry.path, entry.name):
                    subdirectories.append(entry.path)
                continue
            linked = entry.is_symlink()
            if linked and entry.is_dir():
                continue  # a symlinked directory: never descended
            if (linked or entry.name.startswith(".")) and not rules.keeps(entry.path, entry.name):
                continue
            info = entry.stat()  # follows a symlink to its file
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):  # not sockets, FIFOs, devices, dangling links
            yield entry.path, info
    for subdirectory in subdirectories:
        yield from _walk_directory(subdirectory, rules)


def _through_symlinked_dir(match: str, pattern: str) -> bool:
    """True when a glob match was reached through a symlinked directory."""
    fixed = pattern.split("/")
    depth = next((i for i, part in enumerate(fixed) if _GLOB_CHARS & set(part)), len(fixed))
    parts = match.split(os.sep)
    prefixes = (os.sep.join(parts[:end]) for end in range(max(depth, 1), len(parts)))
    return any(os.path.islink(prefix) for prefix in prefixes)


def _relative(path: str, base: str) -> str:
    return os.path.relpath(path, base).replace(os.sep, "/")


def _local_file(path: str, info: os.stat_result, base: str) -> LocalFile:
    inside = base.rstrip(os.sep) + os.sep
    relative = path[len(inside) :] if path.startswith(inside) else os.path.relpath(path, base)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise UsageError(
            f"{path} is outside the base directory {base}",
            hint="run from a directory that contains it, or pass --base DIR",
        )
    return LocalFile(path, relative.replace(os.sep, "/"), info.st_size, info.st_mtime_ns)
