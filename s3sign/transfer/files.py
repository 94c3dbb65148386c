"""The files a push uploads: paths, directories and globs expanded, with the rules for
hidden files, symlinks and ``--exclude``, and names that would share a key refused.

Listing streams: ``expand_paths`` walks once to count (and to say what matched nothing or
was left out) and ``Expansion.files`` walks again as the push takes the files, so that a
tree of a million files is never held as a list. Two files whose names are one key once
Unicode-normalised (NFC) are always siblings somewhere in the tree (two spellings of one
name in one folder): they are found folder by folder and both refused.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from s3sign.errors import UsageError
from s3sign.keys import normal_name

_GLOB_CHARS = frozenset("*?[")
EXAMPLES = 3  # names kept of each kind of thing left out (the rest are counted)


@dataclass(frozen=True)
class LocalFile:
    """One file to upload: where it is, the name the backend sees, and its state when listed."""

    path: str  # a plain string: cheaper than a Path for each of 10,000 files
    name: str  # relative to the base directory, "/"-separated
    size: int
    mtime_ns: int
    conflict: str | None = None  # why it cannot be pushed as it is named (found listing it)


@dataclass
class LeftOut:
    """How many of one kind of thing a listing left out, and the first few names."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(name)


@dataclass
class Expansion:
    """What paths expanded to: how many files and bytes, the paths that matched none, what
    was left out, and ``files``, which lists them again each time it is iterated."""

    files: Iterable[LocalFile]
    count: int
    total_bytes: int
    unmatched: tuple[str, ...]
    hidden: LeftOut  # found by a walk or a glob, named with a leading "."
    outside: LeftOut  # symlinks whose target is outside the base directory
    excluded: LeftOut  # names the ``excluded`` test took out


@dataclass
class _Rules:
    """What a walk or a glob leaves out, and a note of each thing it left out."""

    base: str  # the base directory, resolved
    base_abs: str  # as given, absolute: names are relative to it
    include_hidden: bool
    follow_symlinks: bool
    excluded: Callable[[str], bool] | None
    hidden: LeftOut = field(default_factory=LeftOut)
    outside: LeftOut = field(default_factory=LeftOut)
    dropped: LeftOut = field(default_factory=LeftOut)

    def left_out(self) -> int:
        return self.hidden.count + self.outside.count

    def keeps(self, path: str, name: str) -> bool:
        """May a found ``path`` (its last part ``name``) be pushed?"""
        if name.startswith(".") and not self.include_hidden:
            self.hidden.add(_relative(path, self.base_abs))
            return False
        if not self.follow_symlinks and os.path.islink(path):
            target = os.path.realpath(path)
            if target != self.base and not target.startswith(self.base.rstrip(os.sep) + os.sep):
                self.outside.add(_relative(path, self.base_abs))
                return False
        return True


# A found file: its path, its stat, and the paths it (or a folder above it) shares a key with.
_Found = tuple[str, os.stat_result, list[str] | None]


@dataclass(frozen=True)
class _Request:
    paths: Sequence[str]
    listed: Sequence[str]
    literal: bool


def expand_paths(
    paths: Sequence[str],
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
    request = _Request(paths, listed, literal)

    def rules() -> _Rules:
        real = os.path.realpath(base_abs)
        return _Rules(real, base_abs, include_hidden, follow_symlinks, excluded)

    counted, unmatched = rules(), list[str]()
    count = total = 0
    for local in _list(request, counted, unmatched):
        count, total = count + 1, total + local.size
    return Expansion(
        _Listing(request, rules),
        count,
        total,
        tuple(unmatched),
        counted.hidden,
        counted.outside,
        counted.dropped,
    )


@dataclass(frozen=True)
class _Listing:
    """The files again, on each iteration (``Expansion.files``)."""

    request: _Request
    rules: Callable[[], _Rules]

    def __iter__(self) -> Iterator[LocalFile]:
        return _list(self.request, self.rules(), [])


def _list(request: _Request, rules: _Rules, unmatched: list[str]) -> Iterator[LocalFile]:
    """Each file the request names, once; ``unmatched`` gets the paths that named none.

    One directory walked is checked for names that share a key folder by folder, and holds
    nothing per file. With more than one path, or a glob (``**`` matches a folder and the
    files in it), the files seen so far are kept, to list each once and to refuse names that
    share a key across them."""
    sources = list(request.paths) + list(request.listed)
    patterns = [
        index < len(request.paths) and _is_pattern(raw, request)
        for index, raw in enumerate(sources)
    ]
    seen = _SeenNames() if len(sources) > 1 or any(patterns) else None
    for raw, is_pattern in zip(sources, patterns, strict=True):
        candidates = sorted(glob.glob(raw, recursive=True)) if is_pattern else [raw]
        produced, left_out = 0, rules.left_out()
        found = _globbed(candidates, raw, rules) if is_pattern else _walk(raw, rules)
        for path, info, same_key in found:
            produced += 1
            local = _local_file(path, info, rules.base_abs, same_key)
            if seen is not None and not seen.first(local):
                continue
            if rules.excluded is not None and rules.excluded(local.name):
                rules.dropped.add(local.name)
                continue
            yield local if seen is None else seen.checked(local)
        if not produced and rules.left_out() == left_out:  # left out is not unmatched
            unmatched.append(raw)


def _is_pattern(raw: str, request: _Request) -> bool:
    """A glob for s3sign to expand (one the shell did not): not with --literal, and not a
    path that exists as it is written."""
    return not request.literal and bool(_GLOB_CHARS & set(raw)) and not os.path.lexists(raw)


class _SeenNames:
    """With more than one path, or a glob: the files listed so far (each listed once) and
    their keys (the second of two names of one key refused), kept as the paths are walked."""

    def __init__(self) -> None:
        self._paths: set[str] = set()
        self._keys: dict[str, str] = {}

    def first(self, local: LocalFile) -> bool:
        if local.path in self._paths:
            return False
        self._paths.add(local.path)
        return True

    def checked(self, local: LocalFile) -> LocalFile:
        key = normal_name(local.name)
        other = self._keys.setdefault(key, local.name)
        if other == local.name or local.conflict:
            return local
        return _conflicting(local, [other])


def with_conflicts(files: Sequence[LocalFile]) -> list[LocalFile]:
    """``files`` (a list given to the engine rather than listed here), with the names that
    are one key once NFC-normalised refused, each naming the others."""
    by_key: dict[str, list[LocalFile]] = {}
    for local in files:
        by_key.setdefault(normal_name(local.name), []).append(local)
    return [
        local
        if len(same) == 1 or local.conflict
        else _conflicting(local, [o.name for o in same if o is not local])
        for local in files
        for same in [by_key[normal_name(local.name)]]
    ]


def _globbed(candidates: list[str], pattern: str, rules: _Rules) -> Iterator[_Found]:
    conflicts = _same_keys([os.path.abspath(c) for c in candidates])
    for candidate in candidates:
        if _through_symlinked_dir(candidate, pattern):
            continue
        absolute = os.path.abspath(candidate)
        if not rules.keeps(absolute, os.path.basename(absolute)):
            continue
        for path, info, same_key in _walk(absolute, rules):
            yield path, info, same_key or conflicts.get(absolute)


def _same_keys(paths: Sequence[str]) -> dict[str, list[str]]:
    """Among ``paths`` (a folder's entries, or one glob's matches), those that are one key
    once NFC-normalised: path -> the other paths of that key."""
    if all(path.isascii() for path in paths):
        return {}  # the common case: every ASCII name is its own key
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(normal_name(path), []).append(path)
    return {
        path: [other for other in same if other != path]
        for same in groups.values()
        if len(same) > 1
        for path in same
    }


def _walk(path: str, rules: _Rules) -> Iterator[_Found]:
    """A file as itself; a directory as its regular files, recursively, in name order.

    One ``stat`` per file (``scandir`` entries): listing 10,000 files takes
    tens of milliseconds, not a noticeable part of the push.
    """
    path = os.path.abspath(path)
    try:
        info = os.stat(path)  # follows a symlink to its file
        linked = os.path.islink(path)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode):
        yield path, info, None
    elif stat.S_ISDIR(info.st_mode) and not linked:  # never descend a symlinked directory
        yield from _walk_directory(path, rules, None)


def _walk_directory(directory: str, rules: _Rules, same_key: list[str] | None) -> Iterator[_Found]:
    """``same_key``: the folders this one shares a key with (everything under it, too)."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return  # unreadable: as os.walk, skip it
    conflicts = _same_keys([entry.path for entry in entries])
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
            yield entry.path, info, same_key or conflicts.get(entry.path)
    for subdirectory in subdirectories:
        yield from _walk_directory(subdirectory, rules, same_key or conflicts.get(subdirectory))


def _through_symlinked_dir(match: str, pattern: str) -> bool:
    """True when a glob match was reached through a symlinked directory."""
    fixed = pattern.split("/")
    depth = next((i for i, part in enumerate(fixed) if _GLOB_CHARS & set(part)), len(fixed))
    parts = match.split(os.sep)
    prefixes = (os.sep.join(parts[:end]) for end in range(max(depth, 1), len(parts)))
    return any(os.path.islink(prefix) for prefix in prefixes)


def _relative(path: str, base: str) -> str:
    return os.path.relpath(path, base).replace(os.sep, "/")


def _conflicting(local: LocalFile, others: list[str]) -> LocalFile:
    """``local``, refused: its name is the key of ``others`` (names) too."""
    named = " and ".join(ascii(other) for other in others)
    reason = (
        f"{local.name!a} and {named} are the same key once Unicode-normalised (NFC): rename one"
    )
    return LocalFile(local.path, local.name, local.size, local.mtime_ns, reason)


def _local_file(
    path: str, info: os.stat_result, base: str, same_key: list[str] | None = None
) -> LocalFile:
    inside = base.rstrip(os.sep) + os.sep
    relative = path[len(inside) :] if path.startswith(inside) else os.path.relpath(path, base)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise UsageError(
            f"{path} is outside the base directory {base}",
            hint="run from a directory that contains it, or pass --base DIR",
        )
    local = LocalFile(path, relative.replace(os.sep, "/"), info.st_size, info.st_mtime_ns)
    if not same_key:
        return local
    return _conflicting(local, [_relative(other, base) for other in same_key])
