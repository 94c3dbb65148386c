"""One file of a pull, from its signed GET to its final name: fetched whole, or, when it
is big, in ranges that are tasks of their own on the shared pool (memory stays flat, and
a big file moves on several connections), each retried on its own.

- The bytes are checked before the file takes its final name (``Check``): as they arrive
  when the file comes whole; in ranges, each range's SHA-256 is a part of the stored
  composite (ranges are cut as the upload cut its parts), and anything else (a checksum
  of the whole object) is checked by reading the file back once.
- A range is asked for with ``If-Match`` on the object's ETag, so that a file replaced in
  the store while it is fetched fails (412) instead of coming back as a mix of two.
- Connection errors, 408, 429 and 5xx are retried with backoff; an expired URL is signed
  again; a checksum mismatch is not retried (the stored object is not what it says).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from s3sign.digests import composite_sha256
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.http.wire import network_problem
from s3sign.protocol import DownloadResult
from s3sign.retry import RETRY_STATUSES, backoff
from s3sign.s3limits import MiB, plan_parts
from s3sign.s3xml import s3_error
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.landing import Landing, Landings, Stopped
from s3sign.transfer.pool import StoreHealth, WorkerPool
from s3sign.transfer.report import FileOutcome, Reporter

CHECKSUM_MISMATCH = "checksum_mismatch"
REPLACED = "the object was replaced in the store while it was being pulled"
STORE_DOWN = "not tried: the object store stopped answering (the downloads before it failed)"
DEFAULT_RANGE = 16 * MiB  # without the backend's part size
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class Fatal(Exception):
    """This file cannot be pulled; retrying will not help."""


class _Again(Exception):
    """A transient failure, or an expired URL: try again (signed anew)."""

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.network = network


@dataclass(frozen=True)
class PullOptions:
    run_id: str
    concurrency: int = 8
    attempts: int = 5
    stall_timeout: float = 120.0
    batch_size: int = 200
    transport: Transport = field(default_factory=Transport)  # Settings.transport
    skip_existing: bool = False  # a local file of the same size and checksum is kept


@dataclass(frozen=True)
class Store:
    """What the pull knows of the store, from the backend: the part size uploads were
    cut with (``None``: unknown), and whether it keeps SHA-256s."""

    part_size: int | None = None
    keeps_sha256: bool | None = None


@dataclass(eq=False)
class Download:
    """One file on its way, shared by the tasks of its ranges; ``done`` is resolved once
    its outcome is final (recorded, or dropped because the pull was stopped)."""

    answer: DownloadResult
    outcome: FileOutcome
    final: Path
    url: str
    done: Future[None] = field(default_factory=Future)
    ranges: list[tuple[int, int]] = field(default_factory=list)  # (offset, length)
    digests: dict[int, str] = field(default_factory=dict)  # range -> its SHA-256 (base64)
    check: Check | None = None  # the whole file's, as it arrives in one stream
    landing: Landing | None = None
    left: int = 0  # ranges not finished
    error: str | None = None
    stopped: bool = False
    told: bool = True  # the backend said what is stored; else the GET's answer says it
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return self.answer.size or 0


class Downloader:
    """Fetches files (whole or in ranges) until their bytes are whole and checked."""

    def __init__(
        self,
        client: BackendClient,
        options: PullOptions,
        reporter: Reporter,
        http: Connections,
        pool: WorkerPool,
        record: Callable[[FileOutcome], None],
    ) -> None:
        self.client, self.run_id, self.attempts = client, options.run_id, options.attempts
        self.reporter, self._http, self._pool, self._record = reporter, http, pool, record
        self.landings = Landings()
        self.store = Store()
        self.health = StoreHealth(options.concurrency)
        self._ranges_work = True  # until a store answers a range with the whole object

    def start(self, download: Download) -> None:
        """Open the file's temporary name and fetch it: the first range in this thread,
        the others as tasks on the pool. Whichever finishes last lands the file."""
        size = self.size_of_ranges(download.size)
        offsets = range(0, download.size, size)
        download.ranges = [(at, min(size, download.size - at)) for at in offsets] or [(0, 0)]
        download.left = len(download.ranges)
        try:
            download.landing = self.landings.open(download.final, download.size)
        except Stopped:
            download.done.set_result(None)
            return
        except OSError as exc:  # a local problem (a full disk, no permission): not retried
            download.outcome.error = _cannot_write(download.final, exc)
            self._record(download.outcome)
            download.done.set_result(None)
            return
        self.reporter.file_started(download.outcome.file_name, download.size)
        for index in range(1, len(download.ranges)):
            self._pool.submit(partial(self._guarded, download, index))
        self._range(download, 0)

    def size_of_ranges(self, size: int) -> int:
        """A file of ``size`` bytes comes whole, or in ranges of the parts its upload was
        cut into (when there are at least two): how big each is."""
        part = plan_parts(size, self.store.part_size or DEFAULT_RANGE)[0]
        return part if self._ranges_work and size >= 2 * part else size or 1

    def needs_lookup(self, size: int) -> bool:
        """Must the backend say what is stored before the GET (a HEAD), or may the GET's
        answer say it? Ranges need it first: the ETag to ask with, the composite to check."""
        return self.size_of_ranges(size) < size

    def _guarded(self, download: Download, index: int) -> None:
        try:
            self._range(download, index)
        except BaseException as exc:  # a bug: the pull waiting for this file must hear of it
            if not download.done.done():
                download.done.set_exception(exc)
            raise

    def _range(self, download: Download, index: int) -> None:
        try:
            self._fetch_range(download, index)
        except (Fatal, Stopped) as exc:
            with download.lock:
                download.stopped = download.stopped or isinstance(exc, Stopped)
                download.error = download.error or str(exc)
        with download.lock:
            download.left -= 1
            if download.left:
                return
        self._land(download)

    def _land(self, download: Download) -> None:
        """All ranges are in: check the bytes and give the file its final name, or not."""
        outcome, landing = download.outcome, download.landing
        assert landing is not None
        try:
            if download.error == _NO_RANGES and len(download.ranges) > 1:
                landing.discard()  # the store ignores ranges: once more, whole
                self._ranges_work, download.error, download.digests = False, None, {}
                self.start(download)
                return
            if download.error is None:
                self._verify(download)
                landing.commit()
                outcome.status = "uploaded"  # the report's word for "arrived and checked"
            else:
                outcome.error = download.error
        except Fatal as exc:
            outcome.error = str(exc)
        except OSError as exc:
            outcome.error = _cannot_write(download.final, exc)
        except Stopped:
            download.stopped = True
        finally:
            landing.discard()
        if not download.stopped:
            self._record(outcome)
        download.done.set_result(None)

    def _verify(self, download: Download) -> None:
        if download.check is not None:  # fetched whole, checked as it came
            download.check.verify()
            return
        check = Check(download.size, download.answer, self.store)
        parts = [download.digests[index] for index in range(len(download.ranges))]
        if check.settled_by(parts, download.ranges[0][1]):
            return
        assert download.landing is not None
        check.read(download.landing.partial)  # a whole-object checksum
        check.verify()

    def _fetch_range(self, download: Download, index: int) -> None:
        """Fetch range ``index`` with retries (the file's attempts: its range's most)."""
        name = download.outcome.file_name
        for attempt in range(1, self.attempts + 1):
            if self.health.down:
                raise Fatal(STORE_DOWN)
            if download.error is not None:
                raise Fatal(download.error)  # another range failed the file: stop here
            with download.lock:
                download.outcome.attempts = max(download.outcome.attempts, attempt)
            try:
                self._get(download, index)
                self.health.answered()
                return
            except _Again as exc:
                if attempt == self.attempts:
                    if exc.network:
                        self.health.unanswered()
                    raise Fatal(f"{exc} (after {attempt} attempts)") from None
                self.reporter.retrying(name, attempt, str(exc))
                time.sleep(backoff(attempt))
                self._sign_again(download)
        raise AssertionError("unreachable")

    def _sign_again(self, download: Download) -> None:
        """A fresh URL for the file, of the same object: one changed since is not mixed in."""
        first = download.answer
        again = self._answer(first.file_name, download.told)
        if again.download is None:
            raise Fatal("the backend would not sign it again")
        told = (again.size, again.etag, again.sha256)
        if download.told and told != (first.size, first.etag, first.sha256):
            raise Fatal(REPLACED)
        download.url = again.download.url

    def _answer(self, name: str, lookup: bool) -> DownloadResult:
        answers = self.client.downloads(self.run_id, [name], lookup).files
        if len(answers) != 1 or answers[0].file_name != name:
            raise Fatal("the backend answered for another file")
        return answers[0]

    def _learn(self, download: Download, headers: dict[str, str]) -> None:
        """What is stored, from the GET's answer (signed with ``x-amz-checksum-mode``); from
        the backend (a HEAD) where the store did not say, if it is still the same object."""
        assert download.check is not None
        etag = headers.get("etag", "").strip('"')
        sha256 = headers.get("x-amz-checksum-sha256")
        if not sha256:
            told = self._answer(download.outcome.file_name, True)
            if (told.size, told.etag) != (download.size, etag):
                raise _Again("the object changed while it was fetched")
            sha256 = told.sha256
        download.check.stored, download.check.etag = sha256, etag
        download.outcome.sha256, download.outcome.etag = sha256, etag

    def _headers(self, download: Download, index: int) -> dict[str, str]:
        """The GET's headers: the signed ones, and for a range, its bounds and the ETag it
        must still have."""
        headers = dict(download.answer.download.headers) if download.answer.download else {}
        if len(download.ranges) > 1:
            offset, length = download.ranges[index]
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
            if download.answer.etag:
                headers["If-Match"] = f'"{download.answer.etag.strip(chr(34))}"'
        return headers

    def _get(self, download: Download, index: int) -> None:
        offset, length = download.ranges[index]
        ranged = len(download.ranges) > 1
        headers = self._headers(download, index)
        if not ranged:  # checked as it comes: from the start at each attempt
            download.check = Check(download.size, download.answer, self.store)
        hasher = download.check or hashlib.sha256()
        landing, name, received = download.landing, download.outcome.file_name, 0
        assert landing is not None

        def sink(block: bytes | memoryview) -> None:
            nonlocal received
            if self.landings.stopped:
                raise Stopped
            if received + len(block) > length:
                raise Fatal(f"S3 sent more than the {length:,} bytes expected ({REPLACED}?)")
            try:
                landing.write(offset + received, block)
            except OSError as exc:
                raise Fatal(_cannot_write(download.final, exc)) from None
            hasher.update(block)
            received += len(block)
            self.reporter.advanced(name, len(block))

        try:
            wanted = 206 if ranged else None
            response = self._http.fetch(download.url, headers, sink, length, wanted)
        except OSError as exc:
            self.reporter.advanced(name, -received)
            raise _Again(f"network error: {network_problem(exc)}", network=True) from None
        except (_Again, Fatal):
            self.reporter.advanced(name, -received)
            raise
        if response.status != (206 if ranged else 200):
            self.reporter.advanced(name, -received)
            raise _refusal(response.status, response.data, ranged)
        if ranged and not _covers(response.headers.get("content-range", ""), offset, length):
            raise Fatal("S3 answered another range than was asked for")
        if received != length:
            self.reporter.advanced(name, -received)
            raise _Again(f"got {received:,} bytes of {length:,}")
        if ranged:
            assert not isinstance(hasher, Check)
            download.digests[index] = base64.b64encode(hasher.digest()).decode()
        elif not download.told:
            try:
                self._learn(download, response.headers)
            except _Again:
                self.reporter.advanced(name, -received)
                raise


_NO_RANGES = "the store answered a range with the whole object"


def _refusal(status: int, body: bytes, ranged: bool) -> Exception:
    """What an S3 answer other than the bytes means: sign again, retry, or give up."""
    if 200 <= status < 300:
        return Fatal(_NO_RANGES if ranged else f"S3 answered {status} to a GET, without the bytes")
    code, message = s3_error(body) or ("", "")
    if status == 412:
        return Fatal(REPLACED)
    if status == 404:
        return Fatal("not_found: it was deleted from the store since it was listed")
    if status in RETRY_STATUSES or "expired" in message.lower():
        return _Again(f"S3 answered {status} {code}".rstrip())
    return Fatal(f"S3 refused the download: {status} {code}".rstrip())


def _cannot_write(final: Path, exc: OSError) -> str:
    return f"cannot write it here ({final.parent}): {exc.strerror or exc}"


def _covers(content_range: str, offset: int, length: int) -> bool:
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    return match is not None and (int(match[1]), int(match[2])) == (offset, offset + length - 1)


class Check:
    """The bytes of one file as they arrive, against what the store keeps: its SHA-256
    (one PUT), or the composite of its parts' SHA-256s (``BASE64-N``, a multipart upload
    whose parts were planned with the backend's part size). On a store that keeps no
    SHA-256 (as the backend found out), a single PUT's ETag, the MD5 of its bytes, instead.
    On a store that keeps them, an object without one was not uploaded by ``push`` (or was
    replaced since): it cannot be checked, and is not written."""

    def __init__(self, size: int, answer: DownloadResult, store: Store) -> None:
        self.stored, self.etag, self.keeps = answer.sha256, answer.etag or "", store.keeps_sha256
        self.whole, self.md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        part_size = store.part_size
        self.part_size = plan_parts(size, part_size)[0] if part_size and size else 0
        self.part, self.left, self.parts = hashlib.sha256(), self.part_size, list[str]()

    def update(self, block: bytes | memoryview) -> None:
        self.whole.update(block)
        if not self.stored and self.keeps is not True:
            self.md5.update(block)
        if not self.part_size:
            return
        view = memoryview(block)
        while view:
            taken = view[: self.left]
            self.part.update(taken)
            self.left -= len(taken)
            view = view[len(taken) :]
            if not self.left:
                self.parts.append(base64.b64encode(self.part.digest()).decode())
                self.part, self.left = hashlib.sha256(), self.part_size

    def read(self, path: Path) -> None:
        """``update`` with the bytes of the file at ``path``, a MiB at a time."""
        with path.open("rb") as handle:
            while block := handle.read(MiB):
                self.update(block)

    def settled_by(self, parts: list[str], part_size: int) -> bool:
        """Do ``parts`` (the SHA-256s of ranges of ``part_size``) settle the check without
        reading the bytes again: they make up the stored composite, or there is nothing
        to check them against (no checksum, and an ETag that is no MD5)?"""
        if not self.stored:
            return not self.keeps and not _is_md5(self.etag)
        composite = composite_sha256(parts)
        return part_size == self.part_size and self.stored in (
            composite,
            composite.rsplit("-", 1)[0],
        )

    def verify(self) -> None:
        if not self.stored:
            self._verify_without_checksum()
            return
        whole = base64.b64encode(self.whole.digest()).decode()
        if self.stored == whole:
            return
        if self.left != self.part_size:  # the last, shorter part
            self.parts.append(base64.b64encode(self.part.digest()).decode())
        composite = composite_sha256(self.parts) if self.parts else ""
        if self.stored in (composite, composite.rsplit("-", 1)[0]):
            return
        count = self.stored.rpartition("-")[2]
        if "-" in self.stored and count.isdigit() and int(count) != len(self.parts):
            raise Fatal(
                f"cannot be checked: stored as {count} parts, which this backend's part size "
                "does not cut it into; not written"
            )
        raise Fatal(
            f"{CHECKSUM_MISMATCH}: the bytes do not match the stored checksum (the object "
            "was changed in the store, or corrupted on the way); not written"
        )

    def _verify_without_checksum(self) -> None:
        if self.keeps:
            raise Fatal(
                f"{CHECKSUM_MISMATCH}: the store keeps no checksum for this object, which "
                "push always binds here: it was replaced in the store since (or not pushed by "
                "s3sign); not written"
            )
        if _is_md5(self.etag) and self.md5.hexdigest() != self.etag.lower():
            raise Fatal(
                f"{CHECKSUM_MISMATCH}: the bytes do not match the object's ETag (its MD5); "
                "not written"
            )


def _is_md5(etag: str) -> bool:
    """A single PUT's ETag: the MD5 of its bytes (a multipart object's ends in ``-N``)."""
    return len(etag) == 32 and etag.isalnum()
