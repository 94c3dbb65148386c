"""What the backend says about a push's files: which are stored already (``--skip-existing``)
and which arrived whole (``complete``). Only what ``complete`` verified counts as uploaded.

Both ask the backend, which asks the store; the files the store could not answer for now
(``storage_unavailable``) are asked for again with backoff (``asking_again``), so that a
brief fault of the store fails no file.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Protocol, TypeVar

from s3sign.digests import composite_sha256, file_digest, multipart_etag
from s3sign.errors import BackendError
from s3sign.protocol import (
    STORAGE_UNAVAILABLE,
    CompletedPart,
    CompleteFile,
    CompleteResult,
    ErrorInfo,
    StatusFile,
    StatusResult,
)
from s3sign.retry import backoff
from s3sign.s3limits import plan_parts
from s3sign.transfer.jobs import Job
from s3sign.transfer.pool import wait_for
from s3sign.transfer.upload import Uploader

COMPLETE_SLICE = 128  # files verified per complete call, as their uploads end
T = TypeVar("T")


class _Answer(Protocol):
    @property
    def error(self) -> ErrorInfo | None: ...


A = TypeVar("A", bound=_Answer)


def asking_again(
    ask: Callable[[list[T]], Sequence[A]], items: list[T], attempts: int
) -> Iterator[tuple[int, A]]:
    """``(index, answer)`` for each of ``items``, as ``ask`` answers it for good: the items
    the store could not serve for now (``storage_unavailable``) are asked for again, with
    backoff, up to ``attempts`` rounds."""
    pending = list(range(len(items)))
    for round_ in range(1, attempts + 1):
        last, again = round_ == attempts, []
        for index, answer in zip(pending, ask([items[i] for i in pending]), strict=True):
            if not last and answer.error and answer.error.code == STORAGE_UNAVAILABLE:
                again.append(index)
            else:
                yield index, answer
        if not again:
            return
        pending = again
        time.sleep(backoff(round_))


class Verifier:
    """Skip-existing before a batch is signed, and the backend's ``complete`` after."""

    def __init__(
        self,
        uploader: Uploader,
        completed: Callable[[Job, CompleteResult], None],
        fail: Callable[[Job, str], None],
    ) -> None:
        self.client = uploader.client
        self.options = uploader.options
        self.learned = uploader.learned
        self._completed = completed
        self._fail = fail

    # --- --skip-existing -----------------------------------------------------------------

    def skip_existing(self, jobs: list[Job], skipped: Callable[[Job], None]) -> list[Job]:
        """The jobs to upload: files stored with the same content are ``skipped``. The
        backend's status call decides, from checksums the store verified; it never changes
        what is stored."""
        asked = [(job, spec) for job in jobs if (spec := self._status_file(job)) is not None]
        try:
            specs = [spec for _, spec in asked]
            answers = dict(asking_again(self._status, specs, self.options.attempts))
        except BackendError:
            return jobs  # cannot tell (a backend without the status call): upload them all
        for index, (job, _) in enumerate(asked):
            result = answers[index]
            if result.status == "same":
                job.outcome.key, job.outcome.etag = result.key, result.etag
                skipped(job)
        return [job for job in jobs if job.outcome.status != "skipped"]

    def _status(self, files: list[StatusFile]) -> list[StatusResult]:
        return self.client.status(self.options.run_id, files).files

    def _status_file(self, job: Job) -> StatusFile | None:
        """What the backend compares a file with: its size and the digests this push has;
        the ETag it would get where the store computes ETags as MD5s and the SHA-256s cannot
        decide. None when nothing can show it is the same: it is uploaded. The sizes alone
        only when asked (--checksum none), not when the store enforces no checksum."""
        if self.options.checksum == "none":
            return StatusFile(job.local.name, job.local.size)
        multipart = job.local.size > self.learned.multipart_threshold
        parts = None
        if job.sha256 is not None:  # a multipart file, hashed in one pass with its parts
            job.outcome.sha256 = wait_for(job.sha256)
            if job.outcome.sha256 and job.hashed_parts:
                parts = composite_sha256(job.hashed_parts.all())
        sha256 = None if multipart else job.spec.sha256
        store = self.learned.store
        etag = None
        if store and store.etag_is_md5 and not (store.sha256 and (sha256 or parts)):
            etag = self._expected_etag(job, multipart)
        if not (sha256 or parts or etag):
            return None
        return StatusFile(
            job.local.name, job.local.size, sha256=sha256, parts_sha256=parts, etag=etag
        )

    def _expected_etag(self, job: Job, multipart: bool) -> str | None:
        """The ETag S3 gives this file: its MD5, or for a multipart upload the MD5 of its
        parts' MD5s then ``-COUNT`` (one more pass over the file)."""
        try:
            if not multipart:
                md5 = job.spec.md5 or file_digest(job.local.path, "md5")
                return base64.b64decode(md5).hex()
            if self.learned.part_size is None:
                return None
            part_size = plan_parts(job.local.size, self.learned.part_size)[0]
            return multipart_etag(job.local.path, part_size)
        except OSError:
            return None  # unreadable now: it fails when it is uploaded, with the reason

    # --- complete ------------------------------------------------------------------------

    def finish(self, queued: list[tuple[Job, list[Future[None]]]]) -> None:
        """Verify a batch's files in slices, each once its uploads end (they run in order):
        the last slice, which the push waits for at its very end, stays small."""
        for start in range(0, len(queued), COMPLETE_SLICE):
            done = queued[start : start + COMPLETE_SLICE]
            for _, tasks in done:
                for task in tasks:  # each task fills in its file's outcome itself
                    task.result()
            self._complete([job for job, _ in done if _to_verify(job)])

    def _complete(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        files = [self._complete_file(job) for job in jobs]
        try:
            for index, result in asking_again(self._verify, files, self.options.attempts):
                self._completed(jobs[index], result)
        except BackendError as exc:
            for job in jobs:
                if job.outcome.status != "uploaded":
                    self._fail(job, f"not verified: {exc.message}")

    def _complete_file(self, job: Job) -> CompleteFile:
        # A single PUT had its SHA-256 bound into the URL: S3 checked it. Only a multipart
        # upload's hash (computed alongside) is declared for the backend to check.
        sha256 = None
        if job.sha256 is not None:
            sha256 = job.outcome.sha256 = wait_for(job.sha256)
        parts = None
        if job.plan is not None:
            sha256s = job.part_digests if job.plan.part_checksum == "sha256" else {}
            parts = [
                CompletedPart(part_number=n, etag=e, sha256=sha256s.get(n))
                for n, e in sorted(job.etags.items())
            ]
        return CompleteFile(
            key=job.outcome.key or "",
            file_size=job.local.size,
            sha256=sha256,
            upload_id=job.plan.upload_id if job.plan else None,
            parts=parts,
            # A single PUT's ETag: the backend deletes a mismatched object only then.
            etag=job.outcome.etag if job.plan is None else None,
        )

    def _verify(self, files: list[CompleteFile]) -> list[CompleteResult]:
        return self.client.complete(self.options.run_id, files).files


def _to_verify(job: Job) -> bool:
    """Uploaded, not failed, and not found stored already while it was sent (skipped)."""
    outcome = job.outcome
    return outcome.error is None and outcome.key is not None and outcome.status != "skipped"
