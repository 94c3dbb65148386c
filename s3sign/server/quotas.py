"""Run quotas: how many bytes and files a run may hold (``max_run_bytes``, ``max_run_files``,
lowered for one run by its token's ``max_bytes`` and ``max_files`` claims).

Stateless like the rest of the backend: before it signs a request's uploads, a replica
lists the run's prefix in the store (every page) and adds what the request declares. A
file whose key is stored already replaces it: it adds only the difference in size, and no
file. A file that would take the run over either limit is refused on its own
(``quota_exceeded``); the request's other files are signed.

What the listing cannot show yet are uploads signed but not finished. Each replica keeps
those it signed itself (the key, the declared size, until the URL expires or the listing
shows the key), so that requests to one replica cannot overshoot the quota together: a
push's next batch is signed while the last one is still uploading. Requests for one run
wait for each other on a replica (the listing and the decision are one step). What other
replicas signed and the store does not list yet is not seen: across replicas a run may
go over its quota by the uploads in flight on the others, each bounded by the size it
declared and the life of its URL (docs/protocol.md says so).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3sign.keys import RESERVED_FOLDER, run_prefix
from s3sign.units import format_size

if TYPE_CHECKING:  # tokens use Quota: `s3sign token` starts without the HTTP stack
    from s3sign.signing.store import ObjectStore

MAX_SIGNED = 100_000  # signed, unlisted uploads remembered per replica; then oldest runs go
STRIPES = 64  # locks: requests for one run wait for each other, other runs rarely do


@dataclass(frozen=True)
class Quota:
    """At most ``bytes`` and ``files`` in a run; None: no limit."""

    bytes: int | None = None
    files: int | None = None

    def __bool__(self) -> bool:
        return self.bytes is not None or self.files is not None

    def lowered(self, other: Quota) -> Quota:
        """The stricter of the two, limit by limit."""
        return Quota(_least(self.bytes, other.bytes), _least(self.files, other.files))


NO_QUOTA = Quota()


def _least(one: int | None, other: int | None) -> int | None:
    return other if one is None else one if other is None else min(one, other)


@dataclass(frozen=True)
class Wanted:
    """One file of a request: its key, declared size, and how long its URLs may be used."""

    key: str
    size: int
    seconds: float


class Quotas:
    """The quota check of one replica, with the uploads it signed that are not listed yet."""

    def __init__(
        self, store: ObjectStore, key_prefix: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store, self.key_prefix, self._clock = store, key_prefix, clock
        self._signed: OrderedDict[str, dict[str, tuple[int, float]]] = OrderedDict()
        self._count = 0  # entries in _signed
        self._ledger = threading.Lock()
        self._runs = [threading.Lock() for _ in range(STRIPES)]

    def admit(self, run_id: str, quota: Quota, files: Sequence[Wanted]) -> list[str | None]:
        """For each file in order: None when it fits (then it is counted as signed), or why
        it does not. ``StoreError`` when the run cannot be listed."""
        with self._runs[zlib.crc32(run_id.encode()) % STRIPES]:
            wanted = {file.key for file in files}
            used_bytes, used_files, sizes = self._usage(run_id, quota, wanted)
            answers: list[str | None] = []
            for file in files:
                held = sizes.get(file.key)
                more_bytes = file.size - (held or 0)
                more_files = 0 if held is not None else 1
                why = _over(quota, used_bytes + more_bytes, used_files + more_files)
                answers.append(why)
                if why is None:
                    used_bytes, used_files = used_bytes + more_bytes, used_files + more_files
                    sizes[file.key] = file.size
                    self._remember(run_id, file)
            return answers

    def _usage(
        self, run_id: str, quota: Quota, wanted: set[str]
    ) -> tuple[int, int, dict[str, int]]:
        """Bytes and files in the run (listed, or signed here and not listed yet), and the
        sizes held under the ``wanted`` keys."""
        prefix = run_prefix(self.key_prefix, run_id)
        own = prefix + RESERVED_FOLDER + "/"
        now = self._clock()
        with self._ledger:
            entries = self._signed.get(run_id, {}).items()
            signed = {key: size for key, (size, until) in entries if until > now}
        total, count, sizes, landed = 0, 0, {}, []
        token: str | None = None
        while True:
            objects, token = self.store.list_objects(prefix, "", token)
            for key, info in objects:
                if key.startswith(own):
                    continue
                size = signed.get(key)
                if size is None:  # listed and not being replaced: the listing counts it
                    total, count = total + info.size, count + 1
                    if key in wanted:
                        sizes[key] = info.size
                elif size == info.size:
                    landed.append(key)  # the upload arrived: listed from now on
            if token is None or _over(quota, total, count):
                break  # over already: the rest of the listing changes nothing
        total += sum(signed.values())
        count += len(signed)
        sizes.update((key, size) for key, size in signed.items() if key in wanted)
        self._forget(run_id, landed, now)
        return total, count, sizes

    def _remember(self, run_id: str, file: Wanted) -> None:
        with self._ledger:
            run = self._signed.setdefault(run_id, {})
            self._count += file.key not in run
            run[file.key] = (file.size, self._clock() + file.seconds)
            self._signed.move_to_end(run_id)
            while self._count > MAX_SIGNED and len(self._signed) > 1:
                self._count -= len(self._signed.popitem(last=False)[1])

    def _forget(self, run_id: str, landed: list[str], now: float) -> None:
        """Drop what the listing showed and what can no longer be uploaded."""
        with self._ledger:
            run = self._signed.get(run_id)
            if run is None:
                return
            gone = set(landed) | {key for key, (_, until) in run.items() if until <= now}
            for key in gone:
                self._count -= run.pop(key, None) is not None
            if not run:
                del self._signed[run_id]


def _over(quota: Quota, total: int, count: int) -> str | None:
    if quota.bytes is not None and total > quota.bytes:
        return f"the run may hold {format_size(quota.bytes)}; this file would take it over"
    if quota.files is not None and count > quota.files:
        return f"the run may hold {quota.files} files; this one would be one too many"
    return None
