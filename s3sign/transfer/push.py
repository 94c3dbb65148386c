"""The push engine: plan, hash, sign in batches, upload in one pool, retry, complete.

No printing here: progress goes to a ``Reporter``, the result is a
``PushReport``, and errors that end the whole push are ``S3SignError``.

- Files are taken from the listing as they are needed and go to the backend in batches
  (up to 500), each asked for just before its uploads start; a URL that expires anyway
  is signed again and retried (``upload.py``). A push holds a few batches at a time:
  memory does not grow with the number of files, nor with their size.
- One pool of ``concurrency`` daemon threads (``pool.py``) uploads whole files and parts
  (``parts.py``) alike over keep-alive connections, each body sent from disk by
  ``sendfile`` or in 1 MiB reads.
- The SHA-256 of a single-PUT file is computed before it is signed (the next
  batch is hashed while this one uploads), so S3 itself refuses a corrupted
  body. Each part of a multipart file is hashed in its upload task, just
  before its URL is asked for, and bound the same way; other parts upload
  meanwhile. When a report wants the file's whole SHA-256, one pass gives it
  and the parts' together: the file is read and hashed once.
- Only what the backend's ``complete`` verified counts as uploaded (``verify.py``). On a
  fatal error or Ctrl-C, open multipart uploads are aborted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from s3sign.config import PushChecksum, Settings
from s3sign.digests import file_digest, sha256_with_parts
from s3sign.errors import BackendError, S3SignError, stop_reason
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.protocol import CompleteResult, FileResult, FileSpec
from s3sign.s3limits import plan_parts
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import LocalFile, with_conflicts
from s3sign.transfer.jobs import (
    ALREADY_EXISTS,
    DISAPPEARED,
    AlreadyExists,
    Fatal,
    Job,
    PartDigests,
)
from s3sign.transfer.parts import Multipart
from s3sign.transfer.pool import WorkerPool, batches, wait_for
from s3sign.transfer.report import FileOutcome, PushReport, Reporter
from s3sign.transfer.upload import Learned, Uploader
from s3sign.transfer.verify import Verifier, asking_again

PENDING_COMPLETIONS = 4  # batches waiting to be verified before the push waits for one


@dataclass(frozen=True)
class PushOptions:
    run_id: str
    concurrency: int = 8
    # auto: the strongest the store enforces, as the backend found out (sha256 when it
    # does not say)
    checksum: PushChecksum = "auto"
    content_type: str | None = None
    skip_existing: bool = False
    batch_size: int = 500
    attempts: int = 5
    stall_timeout: float = 120.0
    transport: Transport = field(default_factory=Transport)  # Settings.transport
    # A multipart file's whole SHA-256 binds nothing (S3 checks each part): it is worked
    # out only for a report (--json, --manifest) or to compare with --skip-existing, in
    # one pass with the parts' SHA-256s, which its parts' URLs are then bound to.
    hash_multipart: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, run_id: str, **options: Any) -> PushOptions:
        """The options ``settings`` set (concurrency, stall timeout, transport), and these."""
        return cls(
            run_id=run_id,
            concurrency=settings.concurrency,
            stall_timeout=settings.stall_timeout,
            transport=settings.transport,
            **options,
        )


class Pusher:
    """Uploads a run's files through a backend. One instance per push."""

    def __init__(
        self,
        client: BackendClient,
        options: PushOptions,
        reporter: Reporter,
        http: Connections | None = None,
    ) -> None:
        """``http``: the connections to S3 (by default, new ones by ``options.transport``)."""
        self.client = client
        self.options = options
        self.reporter = reporter
        checksum = "sha256" if options.checksum == "auto" else options.checksum
        self.learned = Learned(checksum, options.batch_size)
        self.uploader = Uploader(client, options, reporter, self.learned, http)
        self._uploads = WorkerPool(options.concurrency, "s3sign-upload")
        self._hashing = WorkerPool(1, "s3sign-hash")
        self._completing = WorkerPool(1, "s3sign-complete")
        self.multipart = Multipart(self.uploader, self._uploads, self._fail)
        self.verifier = Verifier(self.uploader, self._record_completion, self._fail)
        self.report: PushReport | None = None
        self._unrecorded: dict[int, Job] = {}  # the jobs under way, by id: few batches' worth
        self._recording = threading.Lock()

    # --- the whole push ------------------------------------------------------------------

    def push(
        self,
        files: Iterable[LocalFile],
        *,
        count: int | None = None,
        total_bytes: int | None = None,
        report: PushReport | None = None,
    ) -> PushReport:
        """Upload ``files``; the report says what happened to each (never raises for one file).

        ``files`` is taken as it is needed: pass a listing (``Expansion.files``) with its
        ``count`` and ``total_bytes`` to push any number of files in flat memory. A list is
        counted here, and names in it that are one key once NFC-normalised are refused."""
        if count is None or total_bytes is None:
            listed = with_conflicts(files if isinstance(files, Sequence) else list(files))
            files, count, total_bytes = listed, len(listed), sum(f.size for f in listed)
        started = time.monotonic()
        report = self.report = report or PushReport(self.options.run_id)
        self.reporter.start(count, total_bytes)
        taken = [0]  # files taken from the listing so far
        try:
            self._learn_limits()
            self._run(self._jobs(files, taken))
        except (S3SignError, KeyboardInterrupt) as exc:
            self._stopped(exc, count - taken[0])
            raise
        finally:
            report.seconds = time.monotonic() - started
            self.reporter.finish(report)
        return report

    def _run(self, jobs: Iterator[Job]) -> None:
        size = min(self.options.batch_size, self.learned.max_files_per_request)
        concurrency = self.options.concurrency
        # A small first batch sets the uploads going sooner; the next grow from it, so
        # that each is signed while the one before still keeps the pool busy.
        source = batches(jobs, size, first=min(size, 4 * concurrency))
        prepared: deque[Future[list[Job]]] = deque()
        completions: deque[Future[None]] = deque()

        def prepare_ahead() -> None:  # each batch is hashed in the background ahead of its turn
            while len(prepared) < 2 and (batch := next(source, None)) is not None:
                prepared.append(self._hashing.submit(partial(self._prepare, batch)))

        prepare_ahead()
        while prepared:
            ready = wait_for(prepared.popleft())
            prepare_ahead()
            # ... signed when the uploads before it are nearly all under way, so that no URL
            # waits long for its turn, yet with a quarter of a batch still queued: signing
            # 500 files takes the backend about as long as uploading 50 small ones, and the
            # pool must not run dry meanwhile ...
            self._uploads.wait_until_waiting(max(2 * concurrency, len(ready) // 4))
            queued = self._start_batch(ready)
            while completions and (completions[0].done() or len(completions) > PENDING_COMPLETIONS):
                wait_for(completions.popleft())  # a fatal error there (backend gone) ends it now
            # ... and completed (verified) in the background once its uploads are done.
            completions.append(self._completing.submit(partial(self.verifier.finish, queued)))
        for done in completions:
            wait_for(done)

    def _jobs(self, files: Iterable[LocalFile], taken: list[int]) -> Iterator[Job]:
        for local in files:
            taken[0] += 1
            outcome = FileOutcome(file_name=local.name, size=local.size)
            # Without --content-type the backend guesses from the name (protocol v1), once
            # for every worker: the same answer everywhere, and no MIME tables read here.
            spec = FileSpec(local.name, local.size, self.options.content_type)
            job = Job(local=local, outcome=outcome, spec=spec)
            self._unrecorded[id(job)] = job
            if local.conflict:
                self._fail(job, local.conflict)  # before anything is sent for it
            else:
                yield job

    def _stopped(self, exc: S3SignError | KeyboardInterrupt, not_listed: int) -> None:
        """The push was cut short: the files under way fail with its reason (the parts the
        abort cuts short must not say "NoSuchUpload"), open uploads are aborted."""
        assert self.report is not None
        reason = stop_reason(exc)
        for job in list(self._unrecorded.values()):
            with job.lock:
                if job.outcome.error is None:
                    job.outcome.status, job.outcome.error = "failed", reason
        self.multipart.abort_all()
        for job in list(self._unrecorded.values()):
            self._record(job, tell=False)  # in the report; not one line each on the screen
        self.report.not_listed = max(0, not_listed)

    def _learn_limits(self) -> None:
        """Key prefix and limits from ``/v1/info``; defaults for a backend without it."""
        try:
            info = self.client.info()
        except BackendError:
            return
        learned = self.learned
        learned.key_prefix = info.key_prefix
        learned.multipart_threshold = info.multipart_threshold
        learned.part_size = info.part_size
        learned.max_files_per_request = info.max_files_per_request
        learned.store = info.store
        if self.options.checksum != "auto" or info.store is None:
            return
        learned.checksum = info.store.strongest()
        if learned.checksum != "none":
            return
        if info.store.etag_is_md5:  # each upload checked by the ETag (upload.py)
            learned.checksum = "md5"
            self._notice(
                "the object store verifies no checksum on upload (the backend checked): each "
                "upload is checked by its ETag instead, the MD5 the store computed"
            )
        else:
            self._notice(
                "the object store verifies no checksum on upload (the backend checked): "
                "only the sizes that the backend checks at the end vouch for the bytes"
            )

    def _notice(self, message: str) -> None:
        """Said once, to whoever watches, and kept in the report (--json shows it too)."""
        assert self.report is not None
        self.report.notices.append(message)
        self.reporter.notice(message)

    # --- one batch -----------------------------------------------------------------------

    def _prepare(self, batch: list[Job]) -> list[Job]:
        """Hash (in the hashing thread, ahead of use) what the signature will bind."""
        ready = []
        algorithm = self.learned.checksum
        for job in batch:
            if algorithm == "none":
                pass
            elif job.local.size > self.learned.multipart_threshold:
                if algorithm == "sha256":
                    # Each part is hashed just before it goes, and its URL bound to that.
                    job.spec = replace(job.spec, part_checksum="sha256")
                    if self.options.hash_multipart:
                        job.sha256 = self._hashing_soon(job)
            else:
                try:
                    value = file_digest(job.local.path, algorithm)
                except FileNotFoundError:
                    self._fail(job, DISAPPEARED)
                    continue
                except OSError as exc:
                    self._fail(job, f"cannot read it: {exc.strerror}")
                    continue
                if algorithm == "sha256":
                    job.outcome.sha256 = value
                    job.spec = replace(job.spec, sha256=value)
                else:
                    job.spec = replace(job.spec, md5=value)
            ready.append(job)
        return ready

    def _hashing_soon(self, job: Job) -> Future[str | None]:
        """A multipart file's SHA-256, computed while its parts upload, in the same pass as
        the parts' (when the part size is known): the file is read and hashed once."""
        future: Future[str | None] = Future()
        if self.learned.part_size is not None:
            job.hashed_parts = PartDigests(plan_parts(job.local.size, self.learned.part_size)[0])
        parts = job.hashed_parts

        def run() -> None:
            try:
                if parts is None:
                    future.set_result(file_digest(job.local.path, "sha256"))
                else:
                    path, size = job.local.path, parts.part_size
                    future.set_result(sha256_with_parts(path, size, parts.add))
            except OSError:
                future.set_result(None)
            finally:
                if parts is not None:
                    parts.finish()

        threading.Thread(target=run, name="s3sign-hash-big", daemon=True).start()
        return future

    def _start_batch(self, jobs: list[Job]) -> list[tuple[Job, list[Future[None]]]]:
        """Sign one batch and queue its uploads: each job, with its tasks (none if refused)."""
        if self.options.skip_existing:
            jobs = self.verifier.skip_existing(jobs, self._record_skipped)
        if not jobs:
            return []
        answers: dict[int, FileResult] = {}
        try:
            asked = asking_again(self._create, [job.spec for job in jobs], self.options.attempts)
            for index, result in asked:
                answers[index] = result
        except BackendError as exc:
            for index, job in enumerate(jobs):
                if index not in answers:
                    self._fail(job, exc.message)
        queued = []
        for index, result in sorted(answers.items()):
            job = jobs[index]
            job.outcome.key = result.key
            tasks: list[Future[None]] = []
            if result.status != "ready" or result.key is None:
                self._fail(job, _rejection(result))
            elif result.upload is not None:
                job.upload = self.uploader.signed(result.upload)
                tasks.append(self._uploads.submit(partial(self._upload_file, job)))
            elif result.multipart is not None:
                job.plan = result.multipart
                tasks = self.multipart.start(job)
            queued.append((job, tasks))
        return queued

    def _create(self, specs: list[FileSpec]) -> list[FileResult]:
        return self.client.create_uploads(self.options.run_id, specs).files

    def _upload_file(self, job: Job) -> None:
        try:
            job.outcome.etag = self.uploader.send(
                job, 0, job.local.size, None, partial(self._resign, job)
            )
            job.upload = None  # its URL and headers: nothing kept that is not needed
        except AlreadyExists as exc:
            # Stored since --skip-existing asked (another push of the same files): the same?
            if not (self.options.skip_existing and self._skipped_now(job)):
                self._fail(job, str(exc))
        except Fatal as exc:
            self._fail(job, str(exc))

    def _skipped_now(self, job: Job) -> bool:
        return not self.verifier.skip_existing([job], self._record_skipped)

    def _resign(self, job: Job) -> None:
        try:
            result = self.client.create_uploads(self.options.run_id, [job.spec]).files[0]
        except S3SignError as exc:
            raise Fatal(f"signing it again failed: {exc.message}") from None
        if result.upload is None:
            raise Fatal("the backend would not sign it again")
        job.upload = self.uploader.signed(result.upload)

    # --- how each file ends --------------------------------------------------------------

    def _record_completion(self, job: Job, result: CompleteResult) -> None:
        self.multipart.completed(result.key)
        if result.status == "complete":
            job.outcome.status, job.outcome.etag = "uploaded", result.etag
            job.outcome.attempts = 1 + job.retries
            self._record(job)
        elif result.error and result.error.code == "already_exists":
            self._fail(job, ALREADY_EXISTS)
        else:
            message = result.error.message if result.error else "not verified"
            self._fail(job, f"not verified by the backend: {message}")

    def _record_skipped(self, job: Job) -> None:
        job.outcome.status, job.outcome.attempts = "skipped", 0
        self._record(job)

    def _fail(self, job: Job, reason: str) -> None:
        with job.lock:
            if job.outcome.error is not None:
                return
            job.outcome.status, job.outcome.error = "failed", reason
            job.outcome.attempts = 1 + job.retries
        self._record(job)
        self.multipart.abort(job)

    def _record(self, job: Job, *, tell: bool = True) -> None:
        """The file's outcome is final: counted, passed on, and its job let go."""
        with self._recording:
            if self._unrecorded.pop(id(job), None) is None:
                return  # recorded already
        assert self.report is not None
        self.report.record(job.outcome)
        if tell:
            self.reporter.file_finished(job.outcome)


def _rejection(result: FileResult) -> str:
    """Why the backend would not sign a file, with its code."""
    if result.error is None:
        return "rejected by the backend"
    if result.error.code == "already_exists":
        return ALREADY_EXISTS
    reason = result.error.message
    return reason if f"({result.error.code})" in reason else f"{reason} ({result.error.code})"
