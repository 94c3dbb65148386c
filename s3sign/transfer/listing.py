"""A run's stored files, read back page by page from the backend, chosen by the patterns
``push`` understands: ``*`` and ``?`` within a folder, ``**`` across folders, ``[...]``,
and a folder's name for everything in it; or by names as written (``--files-from``),
each of which must be there. Used by ``ls`` and ``pull``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from s3sign.keys import normal_name
from s3sign.protocol import StoredFile
from s3sign.transfer.backend import BackendClient

_GLOB = re.compile(r"[*?\[]")


def matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A test of a file name: true when a pattern matches it or a folder it is in (no
    patterns: every name)."""
    if not patterns:
        return lambda name: True
    compiled = [re.compile(_translate(pattern.strip("/"))) for pattern in patterns]

    def matches(name: str) -> bool:
        candidates = _with_folders(name)
        return any(regex.fullmatch(each) for regex in compiled for each in candidates)

    return matches


def _nothing(name: str) -> bool:
    return False


def _with_folders(name: str) -> list[str]:
    """``a/b/c`` -> ``a/b/c``, ``a/b``, ``a``."""
    candidates = [name]
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        candidates.append(name)
    return candidates


def listing_prefix(patterns: Sequence[str]) -> str:
    """The longest folder prefix every pattern starts with: what the backend can list
    instead of the whole run."""
    if not patterns:
        return ""
    fixed = [_GLOB.split(pattern.strip("/"), 1)[0] for pattern in patterns]
    common = fixed[0]
    for other in fixed[1:]:
        while not other.startswith(common):
            common = common[:-1]
    return common[: common.rfind("/") + 1]


class Chosen:
    """What a read asked for: ``patterns``, and ``names`` taken as written (a file's name,
    or a folder's for the files in it), each of which must be in the run (``missing``,
    once the listing was read to its end). Neither: every file, unless ``names`` were
    asked for and are none."""

    def __init__(self, patterns: Sequence[str] = (), names: Sequence[str] | None = None) -> None:
        self._names = {normal_name(name.strip("/")): False for name in names or ()}
        self._patterns = matcher(patterns) if patterns or names is None else _nothing
        self.prefix = listing_prefix([*patterns, *self._names])

    def __call__(self, name: str) -> bool:
        chosen = self._patterns(name)
        if self._names:
            for candidate in _with_folders(name):
                if candidate in self._names:
                    self._names[candidate] = chosen = True
        return chosen

    def missing(self) -> list[str]:
        return [name for name, found in self._names.items() if not found]


def stored_files(
    client: BackendClient,
    run_id: str,
    chosen: Chosen | Sequence[str] = (),
    *,
    details: bool = False,
    page_size: int | None = None,
) -> Iterator[StoredFile]:
    """The run's files ``chosen`` (or the patterns) choose, in name order, a page at a time
    (``page_size``: files per page; the server's, by default)."""
    wanted = chosen if isinstance(chosen, Chosen) else Chosen(chosen)
    prefix, cursor = wanted.prefix, None
    while True:
        page = client.files(run_id, prefix, cursor, details=details, limit=page_size)
        yield from (stored for stored in page.files if wanted(stored.file_name))
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _translate(pattern: str) -> str:
    """A glob as a regular expression for a whole name ("/" between folders)."""
    out, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[" and (end := pattern.find("]", index + 2)) > 0:
            inside = pattern[index + 1 : end]
            negate = inside.startswith("!")
            body = re.escape(inside[1:] if negate else inside).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return "".join(out)
