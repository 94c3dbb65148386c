"""The pull engine: a run's files fetched straight from S3 with the backend's signed GETs,
each written under a temporary name and given its final name only once its bytes matched
what is stored (``download``). No printing here: progress goes to a ``Reporter``, the
result is a ``PushReport``.

- Files are taken from the listing as they are needed and asked for in batches; each is
  fetched on one pool of ``concurrency`` threads (a big one in ranges, each a task of its
  own) and streamed to disk (memory stays flat whatever its size).
- Names come from the backend: each must be the name asked for and land inside the target
  folder (``landing.destination``); anything else is refused and nothing is written.
- Cut short (Ctrl-C, SIGTERM), no file takes its final name any more and the temporary
  ones are removed before the pull ends.
"""

from __future__ import annotations

import contextlib
import stat
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from pathlib import Path

from s3sign.errors import BackendError, S3SignError, stop_reason
from s3sign.http.connections import Connections
from s3sign.protocol import DownloadResult, ErrorInfo, StoredFile
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.download import (
    CHECKSUM_MISMATCH,
    Check,
    Download,
    Downloader,
    Fatal,
    PullOptions,
    Store,
)
from s3sign.transfer.landing import UnsafeName, destination
from s3sign.transfer.pool import WorkerPool, batches, wait_for
from s3sign.transfer.report import FileOutcome, PushReport, Reporter

__all__ = ["CHECKSUM_MISMATCH", "PullOptions", "Puller"]
STOP_GRACE = 2.0  # seconds the downloads in flight get to see a stop before their files go


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
        self.report = PushReport(options.run_id)
        http = http or Connections(options.transport, "s3", options.stall_timeout)
        self._pool = WorkerPool(options.concurrency, "s3sign-download")
        self._downloader = Downloader(client, options, reporter, http, self._pool, self._record)

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
        report = self.report = report or self.report
        self.reporter.start(count, total_bytes)
        in_flight: list[Future[None]] = []
        try:
            with contextlib.suppress(BackendError):  # a backend without it: no composites
                info = self.client.info()
                keeps = info.store.keeps_sha256 if info.store else None
                self._downloader.store = Store(info.part_size, keeps)
            for batch in batches(files, self.options.batch_size, first=32):
                for asked, answer in self._signed(batch):
                    download = Download(answer, FileOutcome(asked.file_name, asked.size), root, "")
                    self._pool.submit(partial(self._one, asked, download))
                    in_flight.append(download.done)
                self._pool.wait_until_waiting(2 * self.options.concurrency)
                in_flight = [future for future in in_flight if not _finished(future)]
            for future in in_flight:
                wait_for(future)
        except BaseException as exc:
            if isinstance(exc, S3SignError | KeyboardInterrupt):
                report.notices.append(f"stopped: {stop_reason(exc)}")
            self._stop(in_flight)  # whatever stopped it: nothing is left half written
            raise
        finally:
            report.seconds = time.monotonic() - started
            self.reporter.finish(report)
        return report

    def _signed(self, batch: list[StoredFile]) -> list[tuple[StoredFile, DownloadResult]]:
        """Each file of ``batch`` with the backend's answer for it: one answer per file,
        or none is trusted. A file fetched whole is signed without a HEAD (the GET's answer
        says what is stored) unless ``--skip-existing`` must compare it first."""
        by_lookup: dict[bool, list[StoredFile]] = {True: [], False: []}
        for stored in batch:
            by_lookup[self._needs_lookup(stored)].append(stored)
        pairs: list[tuple[StoredFile, DownloadResult]] = []
        for lookup, files in by_lookup.items():
            if not files:
                continue
            names = [f.file_name for f in files]
            answers = self.client.downloads(self.options.run_id, names, lookup).files
            if len(answers) == len(files):
                pairs += zip(files, answers, strict=True)
                continue
            said = f"the backend answered for {len(answers)} of {len(files)} files"
            wrong = ErrorInfo("bad_answer", said)
            pairs += [(f, DownloadResult(f.file_name, "rejected", error=wrong)) for f in files]
        return pairs

    def _needs_lookup(self, stored: StoredFile) -> bool:
        return self.options.skip_existing or self._downloader.needs_lookup(stored.size)

    def _stop(self, in_flight: list[Future[None]]) -> None:
        """No file lands after this, and none is left half written: the downloads in
        flight get a moment to end on their own, then their temporary files go."""
        landings = self._downloader.landings
        landings.stopped = True  # each download stops at its next block
        deadline = time.monotonic() + STOP_GRACE
        try:
            for future in in_flight:
                with contextlib.suppress(Exception):
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
        finally:  # also on a second Ctrl-C
            landings.stop()

    def _one(self, asked: StoredFile, download: Download) -> None:
        """The checks before a file is fetched, then its download (which records it)."""
        outcome = download.outcome
        try:
            answer = self._ready(asked, download)
            outcome.size, outcome.sha256, outcome.etag = asked.size, answer.sha256, answer.etag
            download.final = destination(download.final, answer.file_name)
            if self.options.skip_existing and self._same_here(answer, download.final):
                outcome.status = "skipped"
            else:
                self._downloader.start(download)
                return
        except UnsafeName as exc:
            outcome.error = f"refused: {exc}"
        except Fatal as exc:
            outcome.error = str(exc)
        except BaseException as exc:  # a bug: the pull waiting for this file must hear of it
            download.done.set_exception(exc)
            raise
        self._record(outcome)
        download.done.set_result(None)

    def _ready(self, asked: StoredFile, download: Download) -> DownloadResult:
        """The backend's answer for ``asked``, if it is one to fetch by; ``Fatal`` if not."""
        answer = download.answer
        download.outcome.key = answer.key
        if answer.file_name != asked.file_name:
            raise Fatal(f"the backend answered for another name, {answer.file_name!a}")
        signed = answer.download
        if answer.status != "ready" or signed is None:
            error = answer.error
            raise Fatal(f"{error.message} ({error.code})" if error else answer.status)
        if answer.size is None:  # signed without a HEAD: the GET's answer will say
            if self._needs_lookup(asked):
                raise Fatal("the backend said nothing of the stored object")
            download.told, answer = False, replace(answer, size=asked.size)
        download.answer, download.url = answer, signed.url
        return answer

    def _record(self, outcome: FileOutcome) -> None:
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
        check = Check(info.st_size, answer, self._downloader.store)
        try:
            check.read(final)
            check.verify()
        except (OSError, Fatal):
            return False
        return True


def _finished(future: Future[None]) -> bool:
    """Done (its error, if any, raised here) or not: what the pull still waits for is kept,
    not every file it started."""
    if future.done():
        future.result()
        return True
    return False
