"""The pull engine: a run's files fetched straight from S3 with the backend's signed GETs,
each written under a temporary name and given its final name only once its bytes matched
what is stored (its size, and its SHA-256 or its parts' composite where the store keeps
one). No printing here: progress goes to a ``Reporter``, the result is a ``PushReport``.

- Files are taken from the listing as they are needed and asked for in batches; each is
  fetched on one pool of ``concurrency`` threads and streamed to disk (memory stays flat
  whatever its size).
- Names come from the backend: each must be the name asked for and land inside the target
  folder (``landing.destination``); anything else is refused and nothing is written.
- Connection errors, 408, 429 and 5xx are retried with backoff; an expired URL is signed
  again; a checksum mismatch is not retried (the stored object is not what it says).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import stat
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from s3sign.digests import composite_sha256
from s3sign.errors import BackendError, S3SignError, stop_reason
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.http.wire import network_problem
from s3sign.protocol import DownloadResult, ErrorInfo, StoredFile
from s3sign.retry import RETRY_STATUSES, backoff
from s3sign.s3limits import plan_parts
from s3sign.s3xml import s3_error
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.landing import Landing, UnsafeName, destination
from s3sign.transfer.pool import WorkerPool, batches, wait_for
from s3sign.transfer.report import FileOutcome, PushReport, Reporter

CHECKSUM_MISMATCH = "checksum_mismatch"


@dataclass(frozen=True)
class PullOptions:
    run_id: str
    concurrency: int = 8
    attempts: int = 5
    stall_timeout: float = 120.0
    batch_size: int = 200
    transport: Transport = field(default_factory=Transport)  # Settings.transport
    skip_existing: bool = False  # a local file of the same size and checksum is kept


class _Fatal(Exception):
    """This file cannot be pulled; retrying will not help."""


class _Again(Exception):
    """A transient failure, or an expired URL: try again (signed anew)."""


class Puller:
    """Fetches a run's files into a folder. One instance per pull."""

    def __init__(
        self,
        client: BackendClient,
        options: PullOptions,
        reporter: Reporter,
        http: Connections | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.reporter = reporter
        self._http = http or Connections(options.transport, "s3", options.stall_timeout)
        self._pool = WorkerPool(options.concurrency, "s3sign-download")
        self._part_size: int | None = None
        self._store_keeps_sha256: bool | None = None  # as the backend found out
        self.report: PushReport | None = None
        self._lock = threading.Lock()

    def pull(
        self,
        files: Iterable[StoredFile],
        root: Path,
        *,
        count: int,
        total_bytes: int,
        report: PushReport | None = None,
    ) -> PushReport:
        """Fetch ``files`` (a listing) into ``root``; the report says what happened to each."""
        started = time.monotonic()
        report = self.report = report or PushReport(self.options.run_id)
        self.reporter.start(count, total_bytes)
        try:
            with contextlib.suppress(BackendError):  # a backend without it: no composites
                info = self.client.info()
                self._part_size = info.part_size
                self._store_keeps_sha256 = info.store.keeps_sha256 if info.store else None
            in_flight: list[Future[None]] = []
            for batch in batches(files, self.options.batch_size):
                answers = self.client.downloads(self.options.run_id, [f.file_name for f in batch])
                if len(answers.files) != len(batch):  # one answer per file, or none is trusted
                    said = f"the backend answered for {len(answers.files)} of {len(batch)} files"
                    wrong = ErrorInfo("bad_answer", said)
                    pairs = [
                        (f, DownloadResult(f.file_name, "rejected", error=wrong)) for f in batch
                    ]
                else:
                    pairs = list(zip(batch, answers.files, strict=True))
                for asked, answer in pairs:
                    in_flight.append(self._pool.submit(partial(self._one, asked, answer, root)))
                self._pool.wait_until_waiting(2 * self.options.concurrency)
                in_flight = [future for future in in_flight if not _finished(future)]
            for future in in_flight:
                wait_for(future)
        except (S3SignError, KeyboardInterrupt) as exc:
            report.notices.append(f"stopped: {stop_reason(exc)}")
            raise
        finally:
            report.seconds = time.monotonic() - started
            self.reporter.finish(report)
        return report

    def _one(self, asked: StoredFile, answer: DownloadResult, root: Path) -> None:
        outcome = FileOutcome(asked.file_name, answer.size or asked.size, key=answer.key)
        try:
            if answer.file_name != asked.file_name:
                raise _Fatal(f"the backend answered for another name, {answer.file_name!a}")
            if answer.status != "ready" or answer.download is None or answer.size is None:
                error = answer.error
                raise _Fatal(f"{error.message} ({error.code})" if error else answer.status)
            final = destination(root, answer.file_name)
            outcome.sha256 = answer.sha256
            outcome.etag = answer.etag
            if self.options.skip_existing and self._same_here(answer, final):
                outcome.status = "skipped"
            else:
                outcome.attempts = self._fetch(answer, final)
                outcome.status = "uploaded"  # the report's word for "arrived and checked"
        except UnsafeName as exc:
            outcome.error = f"refused: {exc}"
        except _Fatal as exc:
            outcome.error = str(exc)
        with self._lock:
            assert self.report is not None
            self.report.record(outcome)
        self.reporter.file_finished(outcome)

    def _same_here(self, answer: DownloadResult, final: Path) -> bool:
        """Is ``final`` a regular file of the stored size whose bytes match the stored
        checksum (read once, as a download would be checked)? Never without a checksum."""
        try:
            info = final.lstat()
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode) or info.st_size != answer.size or not answer.sha256:
            return False
        check = _Check(info.st_size, answer, self._part_size, self._store_keeps_sha256)
        try:
            with final.open("rb") as handle:
                while block := handle.read(1024 * 1024):
                    check.update(block)
            check.verify()
        except (OSError, _Fatal):
            return False
        return True

    def _fetch(self, answer: DownloadResult, final: Path) -> int:
        """Fetch into ``final`` with retries: the attempts it took."""
        assert answer.download is not None
        assert answer.size is not None
        url = answer.download.url
        self.reporter.file_started(answer.file_name, answer.size)
        for attempt in range(1, self.options.attempts + 1):
            try:
                self._fetch_once(url, answer, final)
                return attempt
            except _Again as exc:
                if attempt == self.options.attempts:
                    raise _Fatal(f"{exc} (after {attempt} attempts)") from None
                self.reporter.retrying(answer.file_name, attempt, str(exc))
                time.sleep(backoff(attempt))
                again = self.client.downloads(self.options.run_id, [answer.file_name]).files[0]
                if again.download is None:
                    raise _Fatal("the backend would not sign it again") from None
                url = again.download.url
        raise AssertionError("unreachable")

    def _fetch_once(self, url: str, answer: DownloadResult, final: Path) -> None:
        size = answer.size or 0
        check = _Check(size, answer, self._part_size, self._store_keeps_sha256)
        with Landing(final, size) as landing:
            received = [0]

            def sink(block: bytes) -> None:
                landing.write(received[0], block)
                check.update(block)
                received[0] += len(block)
                self.reporter.advanced(answer.file_name, len(block))

            try:
                response = self._http.fetch(url, dict(answer.download.headers), sink, size)  # type: ignore[union-attr]
            except OSError as exc:
                self.reporter.advanced(answer.file_name, -received[0])
                raise _Again(f"network error: {network_problem(exc)}") from None
            if response.status != 200:
                self.reporter.advanced(answer.file_name, -received[0])
                code, message = s3_error(response.data) or ("", "")
                if response.status in RETRY_STATUSES or "expired" in message.lower():
                    raise _Again(f"S3 answered {response.status} {code}".rstrip())
                raise _Fatal(f"S3 refused the download: {response.status} {code}".rstrip())
            if received[0] != size:
                raise _Again(f"got {received[0]} bytes of {size}")
            check.verify()
            landing.commit()


def _finished(future: Future[None]) -> bool:
    """Done (its error, if any, raised here) or not: what the pull still waits for is kept,
    not every file it started."""
    if future.done():
        future.result()
        return True
    return False


class _Check:
    """The bytes of one file as they arrive, against what the store keeps: its SHA-256
    (one PUT), or the composite of its parts' SHA-256s (``BASE64-N``, a multipart upload
    whose parts were planned with the backend's part size). On a store that keeps no
    SHA-256 (as the backend found out), a single PUT's ETag, the MD5 of its bytes, instead.
    On a store that keeps them, an object without one was not uploaded by ``push`` (or was
    replaced since): it cannot be checked, and is not written."""

    def __init__(
        self, size: int, answer: DownloadResult, part_size: int | None, keeps: bool | None
    ) -> None:
        self.stored, self.etag, self.keeps = answer.sha256, answer.etag or "", keeps
        self.whole, self.md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        self.part_size = plan_parts(size, part_size)[0] if part_size and size else 0
        self.part, self.left, self.parts = hashlib.sha256(), self.part_size, list[str]()

    def update(self, block: bytes) -> None:
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
            raise _Fatal(
                f"cannot be checked: stored as {count} parts, which this backend's part size "
                "does not cut it into; not written"
            )
        raise _Fatal(
            f"{CHECKSUM_MISMATCH}: the bytes do not match the stored checksum (the object "
            "was changed in the store, or corrupted on the way); not written"
        )

    def _verify_without_checksum(self) -> None:
        if self.keeps:
            raise _Fatal(
                f"{CHECKSUM_MISMATCH}: the store keeps no checksum for this object, which "
                "push always binds here: it was replaced in the store since (or not pushed by "
                "s3sign); not written"
            )
        single = len(self.etag) == 32 and self.etag.isalnum()  # a single PUT's ETag: its MD5
        if single and self.md5.hexdigest() != self.etag.lower():
            raise _Fatal(
                f"{CHECKSUM_MISMATCH}: the bytes do not match the object's ETag (its MD5); "
                "not written"
            )
