"""The push engine: plan, hash, sign in batches, upload in one pool, retry, complete.

No printing here: progress goes to a ``Reporter``, the result is a
``PushReport``, and errors that end the whole push are ``S3SignError``.

- Files go to the backend in batches (up to 500), each asked for just before
  its uploads start; a URL that expires anyway is signed again and retried.
- One pool of ``concurrency`` daemon threads uploads whole files and parts
  alike over keep-alive connections (``connections.py``), each body sent from
  disk by ``sendfile`` or in 1 MiB reads: memory does not grow with file size
  or count.
- The SHA-256 of a single-PUT file is computed before it is signed (the next
  batch is hashed while this one uploads), so S3 itself refuses a corrupted
  body. Each part of a multipart file is hashed in its upload task, just
  before its URL is asked for, and bound the same way; other parts upload
  meanwhile. When a report wants the file's whole SHA-256, one pass gives it
  and the parts' together: the file is read and hashed once.
- Connection errors, 408, 429 and 5xx are retried with backoff; a checksum or
  size mismatch is not. A file that changed since it was listed fails with a
  clear message instead of becoming a mismatched object: S3 refuses the body
  when a checksum is bound, and otherwise what the PUT stored is taken back.
- Only what the backend's ``complete`` verified counts as uploaded. On a
  fatal error or Ctrl-C, open multipart uploads are aborted.
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

from s3sign.config import Checksum, PushChecksum, Settings
from s3sign.digests import (
    composite_sha256,
    file_digest,
    multipart_etag,
    range_digest,
    sha256_with_parts,
)
from s3sign.errors import BackendError, S3SignError, stop_reason
from s3sign.http.connections import BodyShrank, Connections, network_problem
from s3sign.http.transport import Transport
from s3sign.keys import normal_name
from s3sign.protocol import (
    STORAGE_UNAVAILABLE,
    CompletedPart,
    CompleteFile,
    CompleteResult,
    ErrorInfo,
    FileResult,
    FileSpec,
    MultipartPlan,
    StatusFile,
    StatusResult,
    StoreChecks,
)
from s3sign.retry import RETRY_STATUSES, backoff
from s3sign.s3limits import plan_parts
from s3sign.s3xml import s3_error
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import LocalFile
from s3sign.transfer.report import FileOutcome, PushReport, Reporter

# Until the backend says (/v1/info): the server's default, from the one place it is set.
DEFAULT_MULTIPART_THRESHOLD = Settings().multipart_threshold
PARTS_PER_SIGNING = 1000
COMPLETE_SLICE = 128  # files verified per complete call, as their uploads end
RESIGN_MARGIN = timedelta(seconds=30)
DISAPPEARED = "the file disappeared after it was listed"
STORE_DOWN = "not tried: the object store stopped answering (the uploads before it failed)"
_CHECKSUM_ERRORS = frozenset({"BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest"})
T = TypeVar("T")


class _Answer(Protocol):
    @property
    def error(self) -> ErrorInfo | None: ...


A = TypeVar("A", bound=_Answer)


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


class _Fatal(Exception):
    """This file cannot be uploaded; retrying will not help."""


class _Retryable(Exception):
    """A transient failure: back off and try again."""

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.network = network  # no answer at all, rather than an error status


class _Expired(Exception):
    """The URL expired: sign it again and retry."""


@dataclass(frozen=True)
class _Signed:
    method: str
    url: str
    headers: dict[str, str]
    refresh_at: datetime  # sign again from here on: the URL is about to expire


class _PartDigests:
    """The parts' SHA-256s from the one pass over a multipart file that also gives its whole
    SHA-256 (for parts of ``part_size``): each part's upload waits for its own."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self._digests: dict[int, str] = {}
        self._finished = False
        self._changed = threading.Condition()

    def add(self, number: int, digest: str) -> None:
        with self._changed:
            self._digests[number] = digest
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def get(self, number: int) -> str | None:
        """Part ``number``'s digest; None if the pass ended without it (the file shrank)."""
        with self._changed:
            while number not in self._digests and not self._finished:
                self._changed.wait(0.25)
            return self._digests.get(number)

    def all(self) -> list[str]:
        """Every part's digest, in order, once the pass has ended."""
        return [self._digests[number] for number in sorted(self._digests)]


@dataclass
class _Job:
    """One file on its way: what was listed, signed and sent."""

    local: LocalFile
    outcome: FileOutcome
    spec: FileSpec
    sha256: Future[str | None] | None = None
    upload: _Signed | None = None
    plan: MultipartPlan | None = None
    parts: dict[int, _Signed] = field(default_factory=dict)
    part_digests: dict[int, str] = field(default_factory=dict)  # when parts are bound to one
    hashed_parts: _PartDigests | None = None  # worked out ahead, with the whole SHA-256
    etags: dict[int, str] = field(default_factory=dict)
    retries: int = 0
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _DaemonPool:
    """A fixed pool of daemon threads: Ctrl-C never waits for a stuck upload to end."""

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._waiting = 0  # submitted, not yet started
        self._wake_at = -1  # wake ``wait_until_waiting`` when _waiting drops to this
        self._taken = threading.Condition()
        for index in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True).start()

    def submit(self, function: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._taken:
            self._waiting += 1
        self._tasks.put((future, function))
        return future

    def wait_until_waiting(self, limit: int) -> None:
        """Return once at most ``limit`` tasks wait for a thread."""
        with self._taken:
            self._wake_at = limit
            while self._waiting > limit:
                self._taken.wait(0.25)  # a timeout, so that Ctrl-C is seen at once
            self._wake_at = -1

    def _work(self) -> None:
        while True:
            future, function = self._tasks.get()
            with self._taken:
                self._waiting -= 1
                if self._waiting <= self._wake_at:
                    self._taken.notify()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)


class Pusher:
    """Uploads a run's files through a backend. One instance per push."""

    def __init__(self, client: BackendClient, options: PushOptions, reporter: Reporter) -> None:
        self.client = client
        self.options = options
        self.reporter = reporter
        self._http = Connections(options.transport, "s3", options.stall_timeout)
        self._uploads = _DaemonPool(options.concurrency, "s3sign-upload")
        self._hashing = _DaemonPool(1, "s3sign-hash")
        self._completing = _DaemonPool(1, "s3sign-complete")
        self._open_multipart: dict[str, _Job] = {}
        # Files in a row that failed without any answer from S3: past a few, S3 is down,
        # and the rest fail at once instead of each waiting through its retries.
        self._unanswered = 0
        self._store_down = False
        self._successes = 0  # uploads (files or parts) S3 took: is it up for the others?
        self._health = threading.Lock()
        self.multipart_threshold = DEFAULT_MULTIPART_THRESHOLD
        self.part_size: int | None = None
        self.key_prefix: str | None = None
        self.max_files_per_request = options.batch_size
        self.store: StoreChecks | None = None  # what the store enforces, as the backend says
        self.checksum: Checksum = "sha256" if options.checksum == "auto" else options.checksum
        self.report: PushReport | None = None

    # --- the whole push ------------------------------------------------------------------

    def push(self, files: Sequence[LocalFile]) -> PushReport:
        """Upload ``files``; the report says what happened to each (never raises for one file)."""
        started = time.monotonic()
        report = self.report = PushReport(self.options.run_id)
        jobs = [self._job(local) for local in files]
        report.files = [job.outcome for job in jobs]
        self.reporter.start(len(jobs), sum(local.size for local in files))
        try:
            self._learn_limits()
            jobs = self._refuse_same_keys(jobs)
            size = min(self.options.batch_size, self.max_files_per_request)
            # A small first batch sets the uploads going sooner; the next grow from it, so
            # that each is signed while the one before still keeps the pool busy.
            batches = _chunks(jobs, size, first=min(size, 4 * self.options.concurrency))
            # Each batch is hashed in the background ahead of its turn ...
            prepared = [self._hashing.submit(partial(self._prepare, batch)) for batch in batches]
            completions: list[Future[None]] = []
            for batch in prepared:
                ready = _wait_one(batch)
                # ... signed when the uploads before it are nearly all under way, so that
                # no URL waits long for its turn, yet with a quarter of a batch still
                # queued: signing 500 files takes the backend about as long as uploading
                # 50 small ones, and the pool must not run dry meanwhile ...
                self._uploads.wait_until_waiting(max(2 * self.options.concurrency, len(ready) // 4))
                queued = self._start_batch(ready)
                for done in completions:
                    if done.done():
                        done.result()  # a fatal error there (backend gone) ends the push now
                # ... and completed (verified) in the background once its uploads are done.
                completions.append(self._completing.submit(partial(self._finish_batch, queued)))
            for done in completions:
                _wait_one(done)
        except (S3SignError, KeyboardInterrupt) as exc:
            for job in jobs:  # first: the parts the abort cuts short must not say "NoSuchUpload"
                with job.lock:
                    if job.outcome.status == "failed" and job.outcome.error is None:
                        job.outcome.error = stop_reason(exc)
            self._abort_open_uploads()
            raise
        finally:
            report.seconds = time.monotonic() - started
            self.reporter.finish(report)
        return report

    def _job(self, local: LocalFile) -> _Job:
        outcome = FileOutcome(file_name=local.name, size=local.size)
        # Without --content-type the backend guesses from the name (protocol v1), once for
        # every worker: the same answer everywhere, and no MIME tables read here.
        spec = FileSpec(local.name, local.size, self.options.content_type)
        return _Job(local=local, outcome=outcome, spec=spec)

    def _learn_limits(self) -> None:
        """Key prefix and limits from ``/v1/info``; defaults for a backend without it."""
        try:
            info = self.client.info()
        except BackendError:
            return
        self.key_prefix = info.key_prefix
        self.multipart_threshold = info.multipart_threshold
        self.part_size = info.part_size
        self.max_files_per_request = info.max_files_per_request
        self.store = info.store
        if self.options.checksum != "auto" or info.store is None:
            return
        self.checksum = info.store.strongest()
        if self.checksum != "none":
            return
        if info.store.etag_is_md5:  # each upload checked by the ETag, below (_check_etag)
            self.checksum = "md5"
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

    def _refuse_same_keys(self, jobs: list[_Job]) -> list[_Job]:
        """Two names that are one key once Unicode-normalised (the key policy's NFC) fail
        before anything is sent, each naming the other; the rest go on."""
        by_key: dict[str, list[_Job]] = {}
        for job in jobs:
            by_key.setdefault(normal_name(job.local.name), []).append(job)
        for same in by_key.values():
            for job in same if len(same) > 1 else ():
                others = " and ".join(ascii(o.local.name) for o in same if o is not job)
                self._fail(
                    job,
                    f"{job.local.name!a} and {others} are the same key once Unicode-"
                    "normalised (NFC): rename one",
                )
        return [job for job in jobs if job.outcome.error is None]

    def _prepare(self, batch: list[_Job]) -> list[_Job]:
        """Hash (in the hashing thread, ahead of use) what the signature will bind."""
        ready = []
        algorithm = self.checksum
        for job in batch:
            if algorithm == "none":
                pass
            elif job.local.size > self.multipart_threshold:
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
                job.spec = (
                    replace(job.spec, sha256=value)
                    if algorithm == "sha256"
                    else replace(job.spec, md5=value)
                )
            ready.append(job)
        return ready

    def _hashing_soon(self, job: _Job) -> Future[str | None]:
        """A multipart file's SHA-256, computed while its parts upload, in the same pass as
        the parts' (when the part size is known): the file is read and hashed once."""
        future: Future[str | None] = Future()
        if self.part_size is not None:
            job.hashed_parts = _PartDigests(plan_parts(job.local.size, self.part_size)[0])
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

    # --- one batch -----------------------------------------------------------------------

    def _start_batch(self, jobs: list[_Job]) -> list[tuple[_Job, list[Future[None]]]]:
        """Sign one batch and queue its uploads: each job, with its tasks (none if refused)."""
        if self.options.skip_existing:
            jobs = self._skip_existing(jobs)
        if not jobs:
            return []
        answers: dict[int, FileResult] = {}
        try:
            for index, result in self._asking_again(self._create, [job.spec for job in jobs]):
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
                reason = result.error.message if result.error else "rejected by the backend"
                if result.error and f"({result.error.code})" not in reason:
                    reason += f" ({result.error.code})"
                self._fail(job, reason)
            elif result.upload is not None:
                job.upload = self._signed(result.upload)
                tasks.append(self._uploads.submit(partial(self._upload_file, job)))
            elif result.multipart is not None:
                job.plan = result.multipart
                self._open_multipart[result.key] = job
                tasks = self._start_parts(job)
            queued.append((job, tasks))
        return queued

    def _create(self, specs: list[FileSpec]) -> list[FileResult]:
        return self.client.create_uploads(self.options.run_id, specs).files

    def _asking_again(
        self, ask: Callable[[list[T]], Sequence[A]], items: list[T]
    ) -> Iterator[tuple[int, A]]:
        """``(index, answer)`` for each of ``items``, as ``ask`` answers it for good: the items
        the store could not serve for now (``storage_unavailable``) are asked for again, with
        backoff, up to the attempts, so that a brief fault of the store fails no file."""
        pending = list(range(len(items)))
        for round_ in range(1, self.options.attempts + 1):
            last, again = round_ == self.options.attempts, []
            for index, answer in zip(pending, ask([items[i] for i in pending]), strict=True):
                if not last and answer.error and answer.error.code == STORAGE_UNAVAILABLE:
                    again.append(index)
                else:
                    yield index, answer
            if not again:
                return
            pending = again
            time.sleep(backoff(round_))

    def _finish_batch(self, queued: list[tuple[_Job, list[Future[None]]]]) -> None:
        """Verify the batch's files in slices, each once its uploads end (they run in order):
        the last slice, which the push waits for at its very end, stays small."""
        for start in range(0, len(queued), COMPLETE_SLICE):
            done = queued[start : start + COMPLETE_SLICE]
            for _, tasks in done:
                for task in tasks:  # each task fills in its file's outcome itself
                    task.result()
            self._complete(
                [job for job, _ in done if job.outcome.error is None and job.outcome.key]
            )

    def _skip_existing(self, jobs: list[_Job]) -> list[_Job]:
        """Files stored with the same content are skipped. The backend's status call
        decides, from checksums the store verified; it never changes what is stored."""
        asked = [(job, spec) for job in jobs if (spec := self._status_file(job)) is not None]
        try:
            answers = dict(self._asking_again(self._status, [spec for _, spec in asked]))
        except BackendError:
            return jobs  # cannot tell (a backend without the status call): upload them all
        for index, (job, _) in enumerate(asked):
            result = answers[index]
            if result.status == "same":
                job.outcome.key, job.outcome.etag = result.key, result.etag
                job.outcome.status, job.outcome.attempts = "skipped", 0
                self.reporter.file_finished(job.outcome)
        return [job for job in jobs if job.outcome.status != "skipped"]

    def _status(self, files: list[StatusFile]) -> list[StatusResult]:
        return self.client.status(self.options.run_id, files).files

    def _status_file(self, job: _Job) -> StatusFile | None:
        """What the backend compares a file with: its size and the digests this push has;
        the ETag it would get where the store computes ETags as MD5s and the SHA-256s cannot
        decide. None when nothing can show it is the same: it is uploaded. The sizes alone
        only when asked (--checksum none), not when the store enforces no checksum."""
        if self.options.checksum == "none":
            return StatusFile(job.local.name, job.local.size)
        multipart = job.local.size > self.multipart_threshold
        parts = None
        if job.sha256 is not None:  # a multipart file, hashed in one pass with its parts
            job.outcome.sha256 = _wait_one(job.sha256)
            if job.outcome.sha256 and job.hashed_parts:
                parts = composite_sha256(job.hashed_parts.all())
        sha256 = None if multipart else job.spec.sha256
        store = self.store
        etag = None
        if store and store.etag_is_md5 and not (store.sha256 and (sha256 or parts)):
            etag = self._expected_etag(job, multipart)
        if not (sha256 or parts or etag):
            return None
        return StatusFile(
            job.local.name, job.local.size, sha256=sha256, parts_sha256=parts, etag=etag
        )

    def _expected_etag(self, job: _Job, multipart: bool) -> str | None:
        """The ETag S3 gives this file: its MD5, or for a multipart upload the MD5 of its
        parts' MD5s then ``-COUNT`` (one more pass over the file)."""
        try:
            if not multipart:
                md5 = job.spec.md5 or file_digest(job.local.path, "md5")
                return base64.b64decode(md5).hex()
            if self.part_size is None:
                return None
            return multipart_etag(job.local.path, plan_parts(job.local.size, self.part_size)[0])
        except OSError:
            return None  # unreadable now: it fails when it is uploaded, with the reason

    def _complete(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        files = []
        for job in jobs:
            # A single PUT had its SHA-256 bound into the URL: S3 checked it. Only a
            # multipart upload's hash (computed alongside) is declared for the backend to check.
            sha256 = None
            if job.sha256 is not None:
                sha256 = job.outcome.sha256 = _wait_one(job.sha256)
            parts = None
            if job.plan is not None:
                sha256s = job.part_digests if job.plan.part_checksum == "sha256" else {}
                parts = [
                    CompletedPart(part_number=n, etag=e, sha256=sha256s.get(n))
                    for n, e in sorted(job.etags.items())
                ]
            files.append(
                CompleteFile(
                    key=job.outcome.key or "",
                    file_size=job.local.size,
                    sha256=sha256,
                    upload_id=job.plan.upload_id if job.plan else None,
                    parts=parts,
                    # A single PUT's ETag: the backend deletes a mismatched object only then.
                    etag=job.outcome.etag if job.plan is None else None,
                )
            )
        try:
            for index, result in self._asking_again(self._verify, files):
                self._record_completion(jobs[index], result)
        except BackendError as exc:
            for job in jobs:
                if job.outcome.status != "uploaded":
                    self._fail(job, f"not verified: {exc.message}")

    def _verify(self, files: list[CompleteFile]) -> list[CompleteResult]:
        return self.client.complete(self.options.run_id, files).files

    def _record_completion(self, job: _Job, result: CompleteResult) -> None:
        self._open_multipart.pop(result.key, None)
        if result.status == "complete":
            job.outcome.status, job.outcome.etag = "uploaded", result.etag
            job.outcome.attempts = 1 + job.retries
            self.reporter.file_finished(job.outcome)
        else:
            message = result.error.message if result.error else "not verified"
            self._fail(job, f"not verified by the backend: {message}")

    def _fail(self, job: _Job, reason: str) -> None:
        with job.lock:
            if job.outcome.error is not None:
                return
            job.outcome.status, job.outcome.error = "failed", reason
            job.outcome.attempts = 1 + job.retries
        self.reporter.file_finished(job.outcome)
        if job.plan is not None and job.outcome.key in self._open_multipart:
            self._abort(job)

    # --- multipart -----------------------------------------------------------------------

    def _start_parts(self, job: _Job) -> list[Future[None]]:
        assert job.plan is not None
        assert job.outcome.key is not None
        numbers = list(range(1, job.plan.part_count + 1))
        if self._part_digest_algorithm(job):  # each part signed once hashed, in its task
            return [self._uploads.submit(partial(self._part, job, n)) for n in numbers]
        tasks: list[Future[None]] = []
        for chunk in _chunks(numbers, PARTS_PER_SIGNING):
            try:
                signed = self.client.sign_parts(
                    self.options.run_id, job.outcome.key, job.plan.upload_id, job.local.size, chunk
                )
            except BackendError as exc:
                self._fail(job, exc.message)
                return tasks
            for part in signed.parts:
                job.parts[part.part_number] = self._signed(part)
                tasks.append(self._uploads.submit(partial(self._part, job, part.part_number)))
        return tasks

    def _part(self, job: _Job, number: int) -> None:
        if job.outcome.error is not None:
            return  # another part already failed the file
        assert job.plan is not None
        offset = (number - 1) * job.plan.part_size
        length = min(job.plan.part_size, job.local.size - offset)
        try:
            if number not in job.parts:  # to be bound to its digest: hashed, then signed
                job.part_digests[number] = self._part_digest(job, number, offset, length)
                self._sign_part(job, number)
            job.etags[number] = self._with_retries(job, offset, length, number)
        except _Fatal as exc:
            self._fail(job, str(exc))

    def _part_digest_algorithm(self, job: _Job) -> Literal["sha256", "md5"] | None:
        """What each part's URL is bound to: the SHA-256 when the upload was created for
        that, the MD5 (Content-MD5, which needs nothing at creation) with --checksum md5."""
        if job.plan is not None and job.plan.part_checksum == "sha256":
            return "sha256"
        return "md5" if self.checksum == "md5" else None

    def _part_digest(self, job: _Job, number: int, offset: int, length: int) -> str:
        algorithm = self._part_digest_algorithm(job)
        assert algorithm is not None
        assert job.plan is not None
        ahead = job.hashed_parts if algorithm == "sha256" else None
        if ahead and ahead.part_size == job.plan.part_size and (digest := ahead.get(number)):
            return digest  # from the one pass over the file (None if it ended early: read here)
        try:
            return range_digest(job.local.path, offset, length, algorithm)
        except FileNotFoundError:
            raise _Fatal(DISAPPEARED) from None
        except EOFError:
            raise _Fatal("the file got shorter while it was being uploaded") from None
        except OSError as exc:
            raise _Fatal(f"cannot read it: {exc.strerror}") from None

    def _sign_part(self, job: _Job, number: int) -> None:
        """Sign (or sign again) one part's URL, bound to its digest when it has one."""
        assert job.plan is not None
        assert job.outcome.key is not None
        digest = job.part_digests.get(number)
        algorithm = self._part_digest_algorithm(job) if digest else None
        try:
            signed = self.client.sign_parts(
                self.options.run_id,
                job.outcome.key,
                job.plan.upload_id,
                job.local.size,
                [number],
                sha256=[digest] if digest and algorithm == "sha256" else None,
                md5=[digest] if digest and algorithm == "md5" else None,
            )
        except S3SignError as exc:
            raise _Fatal(f"signing its part {number} failed: {exc.message}") from None
        job.parts[number] = self._signed(signed.parts[0])

    def _abort(self, job: _Job) -> None:
        key = job.outcome.key
        if job.plan is None or key is None or self._open_multipart.pop(key, None) is None:
            return
        # Best effort: a lifecycle rule on the bucket cleans up the rest.
        with contextlib.suppress(S3SignError):
            self.client.abort(self.options.run_id, key, job.plan.upload_id)

    def _abort_open_uploads(self) -> None:
        for job in list(self._open_multipart.values()):
            self._abort(job)

    # --- one PUT, with retries -----------------------------------------------------------

    def _upload_file(self, job: _Job) -> None:
        try:
            job.outcome.etag = self._with_retries(job, 0, job.local.size, None)
            job.upload = None  # its URL and headers: a push of 100,000 files holds none of them
        except _Fatal as exc:
            self._fail(job, str(exc))

    def _with_retries(self, job: _Job, offset: int, length: int, part: int | None) -> str:
        with job.lock:
            first, job.started = not job.started, True
        if first:  # now, not when queued: a live display shows what is really moving
            self.reporter.file_started(job.local.name, job.local.size)
        attempt, resigned, successes_at_first_failure = 0, 0, -1
        while True:
            attempt += 1
            if self._store_down:
                raise _Fatal(STORE_DOWN)
            signed = job.parts[part] if part is not None else job.upload
            assert signed is not None
            try:
                if datetime.now(UTC) >= signed.refresh_at:
                    raise _Expired
                etag = self._put(job, signed, offset, length, part)
                self._unanswered = 0
                self._successes += 1  # unlocked: an increment lost to a race changes nothing
                return etag
            except _Expired:
                resigned += 1
                if resigned > self.options.attempts:
                    raise _Fatal("the URL kept expiring; check this machine's clock") from None
                self._resign(job, part)
                attempt -= 1  # a fresh URL is not a failed attempt
            except _Retryable as exc:
                if successes_at_first_failure < 0:
                    successes_at_first_failure = self._successes
                # Out of attempts? Not while other uploads get through: S3 is up and this
                # one was unlucky (a flaky network, a throttled prefix), so it goes on, up to
                # twice the attempts, rather than fail a CI job over a transient fault.
                unlucky = self._successes > successes_at_first_failure
                if attempt >= self.options.attempts * (2 if unlucky else 1):
                    if exc.network:
                        self._count_unanswered()
                    raise _Fatal(f"{exc} (after {attempt} attempts)") from None
                with job.lock:
                    job.retries += 1
                self.reporter.retrying(job.local.name, attempt, str(exc))
                time.sleep(backoff(attempt))

    def _count_unanswered(self) -> None:
        with self._health:
            self._unanswered += 1
            if self._unanswered >= max(4, self.options.concurrency):
                self._store_down = True

    def _resign(self, job: _Job, part: int | None) -> None:
        if part is not None:
            self._sign_part(job, part)
            return
        try:
            result = self.client.create_uploads(self.options.run_id, [job.spec]).files[0]
        except S3SignError as exc:
            raise _Fatal(f"signing it again failed: {exc.message}") from None
        if result.upload is None:
            raise _Fatal("the backend would not sign it again")
        job.upload = self._signed(result.upload)

    def _signed(self, upload: Any) -> _Signed:
        """A URL from the backend, to be signed again 30 s (or a quarter of its life) before
        it expires: by the backend's clock, which S3 shares, not by this machine's."""
        expires = datetime.fromisoformat(upload.expires_at.replace("Z", "+00:00"))
        expires -= self.client.clock_offset  # on this machine's clock
        margin = min(RESIGN_MARGIN, (expires - datetime.now(UTC)) / 4)
        return _Signed(upload.method, upload.url, dict(upload.headers), expires - margin)

    def _put(self, job: _Job, signed: _Signed, offset: int, length: int, part: int | None) -> str:
        local = job.local
        _check_unchanged(local, "since it was listed")
        sent = 0

        def counted(size: int) -> None:
            nonlocal sent
            sent += size
            self.reporter.advanced(local.name, size)

        try:
            with open(local.path, "rb") as handle:
                response = self._http.send(
                    signed.method, signed.url, signed.headers, handle, offset, length, counted
                )
        except BodyShrank:
            self.reporter.advanced(local.name, -sent)
            raise _Fatal("the file got shorter while it was being uploaded") from None
        except FileNotFoundError:
            raise _Fatal(DISAPPEARED) from None
        except PermissionError:
            raise _Fatal("the file cannot be read: permission denied") from None
        except OSError as exc:
            self.reporter.advanced(local.name, -sent)
            raise _Retryable(f"network error: {network_problem(exc)}", network=True) from None
        except ValueError as exc:  # a header or URL from the backend that HTTP cannot carry
            raise _Fatal(f"the backend's upload URL cannot be sent: {exc}") from None
        if 200 <= response.status < 300:
            etag = response.headers.get("etag", "").strip('"')
            try:
                _check_unchanged(local, "while it was being uploaded")
                self._check_etag(job, part, etag)
            except _Fatal as exc:
                if part is None:  # a part is left to the abort of its upload
                    raise _Fatal(f"{exc}; {self._take_back(job, etag)}") from None
                raise
            return etag
        self.reporter.advanced(local.name, -sent)
        code, message = s3_error(response.data) or ("", "")
        if response.status == 403 and "expired" in message.lower():
            raise _Expired
        if response.status in RETRY_STATUSES:
            raise _Retryable(f"S3 answered {response.status} {code}".rstrip())
        if code in _CHECKSUM_ERRORS:
            raise _Fatal(
                "S3 refused the body: it differs from the checksum taken before the upload "
                "(did the file change?)"
            )
        if code == "SignatureDoesNotMatch":
            _check_unchanged(local, "while it was being uploaded")
        raise _Fatal(f"S3 refused the upload: {response.status} {code} {message}".rstrip())

    def _check_etag(self, job: _Job, part: int | None, etag: str) -> None:
        """Where the store's ETag is the MD5 of the bytes it received (as the backend found
        out), it shows whether it stored what the file's MD5 was taken of: this is the check
        on stores that verify no Content-MD5 (moto)."""
        if self.checksum != "md5" or not (self.store and self.store.etag_is_md5):
            return
        md5 = job.spec.md5 if part is None else job.part_digests.get(part)
        if md5 and etag.lower() != base64.b64decode(md5).hex():
            raise _Fatal(
                "S3 stored other bytes than were read from the file: its ETag is not their MD5 "
                "(changed on the way?)"
            )

    def _take_back(self, job: _Job, etag: str) -> str:
        """Delete what this push's PUT stored (and only that: the backend checks the ETag),
        so that a failed upload leaves no object unlike the file: what to tell the user."""
        assert job.outcome.key is not None
        if not etag:
            return (
                "what S3 stored meanwhile is still there (its answer had no ETag to delete it by)"
            )
        try:
            answer = self.client.abort(self.options.run_id, job.outcome.key, etag=etag)
        except S3SignError as exc:
            return f"what S3 stored meanwhile is still there: {exc.message}"
        if answer.status == "kept":
            return "another upload has replaced it since"
        return "what S3 stored meanwhile was deleted"


def _check_unchanged(local: LocalFile, when: str) -> None:
    try:
        info = os.stat(local.path)
    except FileNotFoundError:
        raise _Fatal(DISAPPEARED) from None
    except OSError as exc:
        raise _Fatal(f"cannot read it: {exc.strerror}") from None
    if info.st_size != local.size or info.st_mtime_ns != local.mtime_ns:
        raise _Fatal(
            f"the file changed {when} (size or modification time); not uploaded as it is "
            "still being written?"
        )


def _chunks(items: Sequence[T], size: int, first: int | None = None) -> Iterator[list[T]]:
    """Lists of ``size`` items; with ``first``, the first has that many, and each next
    four times the one before, up to ``size``."""
    start, length = 0, first or size
    while start < len(items):
        yield list(items[start : start + length])
        start, length = start + length, min(size, 4 * length)


def _wait_one(future: Future[T]) -> T:
    """``future.result()``, waking up regularly so that Ctrl-C is seen at once."""
    while True:
        done, _ = wait([future], timeout=0.25)
        if done:
            return future.result()
