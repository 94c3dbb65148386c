"""The files a push uploads: paths, directories and globs expanded, with the rules for
hidden files, symlinks and ``--exclude``."""

from __future__ import annotations

import glob
import itertools
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from s3sign.errors import UsageError

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
