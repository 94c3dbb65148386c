"""A run's stored files, read back page by page from the backend, chosen by the patterns
``push`` understands: ``*`` and ``?`` within a folder, ``**`` across folders, ``[...]``,
and a folder's name for everything in it. Used by ``ls`` (and ``pull``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

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
        candidates = [name]
        folder = name
        while "/" in folder:
            folder = folder.rsplit("/", 1)[0]
            candidates.append(folder)
        return any(regex.fullmatch(each) for regex in compiled for each in candidates)

    return matches


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


def stored_files(
    client: BackendClient,
    run_id: str,
    patterns: Sequence[str] = (),
    *,
    details: bool = False,
    page_size: int | None = None,
) -> Iterator[StoredFile]:
    """The run's files that ``patterns`` choose, in name order, a page at a time
    (``page_size``: files per page; the server's, by default)."""
    wanted, prefix, cursor = matcher(patterns), listing_prefix(patterns), None
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
