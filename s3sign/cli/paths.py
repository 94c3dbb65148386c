"""Which files ``push`` was asked for: PATHS, ``--files-from``, ``--exclude`` and
``--if-no-files-found``; what was left out is said once, with the flag that takes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from s3sign.cli.console import Console
from s3sign.errors import UsageError

if TYPE_CHECKING:
    from s3sign.transfer.files import Expansion


class NoFilesPolicy(StrEnum):
    error = "error"
    warn = "warn"
    ignore = "ignore"


def paths_from(source: str, stdin: BinaryIO) -> list[str]:
    """``--files-from``: one path per line (``-``: stdin), taken as written; blank lines
    skipped. Bytes as the file system names them, so any file name can be listed."""
    try:
        if source == "-":
            data = stdin.read()
        else:
            with open(source, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise UsageError(
            f"--files-from {source}: cannot read it: {exc.strerror}",
            hint="give a readable file of paths, one per line, or - for stdin",
        ) from None
    return [os.fsdecode(line.removesuffix(b"\r")) for line in data.split(b"\n") if line.strip()]


@dataclass(frozen=True)
class Found:
    """What push was asked to look at, and how (its path flags)."""

    paths: list[str]
    listed: list[str]
    base: Path
    literal: bool
    include_hidden: bool
    follow_symlinks: bool
    exclude: list[str]

    def excluded(self) -> Callable[[str], bool] | None:
        """The ``--exclude`` patterns as a test of a name, with .gitignore's rules (pathspec)."""
        if not self.exclude:
            return None
        from pathspec import GitIgnoreSpec

        return GitIgnoreSpec.from_lines(self.exclude).match_file


def patterns_from(path: Path | None) -> list[str]:
    """The lines of an ``--exclude-from`` file."""
    if path is None:
        return []
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"--exclude-from {path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--exclude-from {path}: not UTF-8 text") from None


def files_to_push(found: Found, policy: NoFilesPolicy, console: Console) -> Expansion:
    """The files PATHS (and ``--files-from``) name, with ``--if-no-files-found`` applied;
    what was left out (hidden, symlinks out of the tree) is said once, with the flag. The
    files are counted now and listed again as the push takes them."""
    from s3sign.transfer.files import expand_paths

    expansion = expand_paths(
        found.paths,
        found.base,
        literal=found.literal,
        listed=found.listed,
        include_hidden=found.include_hidden,
        follow_symlinks=found.follow_symlinks,
        excluded=found.excluded(),
    )
    left_out = [
        (expansion.hidden, "hidden file or folder", "hidden files or folders", "--include-hidden"),
        (expansion.outside, "symlink out of --base", "symlinks out of --base", "--follow-symlinks"),
        (expansion.excluded, "file", "files", ""),
    ]
    for names, one, many, flag in left_out:
        if names.count:
            why = f"{flag} takes them" if flag else "as --exclude asked"
            kind = one if names.count == 1 else many
            examples = _some(names.examples, ", ", names.count)
            console.note(f"left out {names.count:,} {kind} ({examples}): {why}")
    nothing = not expansion.count
    if policy is NoFilesPolicy.warn or (policy is NoFilesPolicy.error and not nothing):
        for unmatched in expansion.unmatched:
            console.warning(f"{unmatched}: no file matched")
    if nothing and policy is NoFilesPolicy.error:
        named = [repr(path) for path in [*found.paths, *found.listed]]
        raise UsageError(
            "no files matched " + (_some(named, " ") if named else "(an empty list)"),
            hint="check the paths (quote globs to let s3sign expand them), "
            "or pass --if-no-files-found warn|ignore"
            + (
                "; or the flag named above"
                if expansion.hidden.count or expansion.outside.count
                else ""
            ),
        )
    return expansion


def _some(names: Sequence[str], separator: str, count: int | None = None) -> str:
    """The first three names, and how many more (of ``count``, if more than given)."""
    count = len(names) if count is None else count
    more = f" and {count - 3:,} more" if count > 3 else ""
    return separator.join(names[:3]) + more
