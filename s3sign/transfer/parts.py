"""A multipart upload through the backend: its parts signed (in batches, or each bound to
its own digest, hashed just before it goes), uploaded on the shared pool, and aborted when
the file fails or the push is cut short.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Literal

from s3sign.digests import range_digest
from s3sign.errors import BackendError, S3SignError
from s3sign.transfer.jobs import DISAPPEARED, SHRANK, Fatal, Job
from s3sign.transfer.pool import WorkerPool, batches
from s3sign.transfer.upload import Uploader

PARTS_PER_SIGNING = 1000


class Multipart:
    """The multipart uploads of one push: started, each part sent, the open ones aborted."""

    def __init__(
        self, uploader: Uploader, pool: WorkerPool, fail: Callable[[Job, str], None]
    ) -> None:
        self.uploader = uploader
        self.client = uploader.client
        self.run_id = uploader.options.run_id
        self._pool = pool
        self._fail = fail
        self._open: dict[str, Job] = {}  # key -> job, while its upload is open

    def start(self, job: Job) -> list[Future[None]]:
        """Queue the parts of ``job`` (its upload created): one task each."""
        assert job.plan is not None
        assert job.outcome.key is not None
        self._open[job.outcome.key] = job
        numbers = list(range(1, job.plan.part_count + 1))
        if self.digest_algorithm(job):  # each part signed once hashed, in its task
            return [self._pool.submit(partial(self._part, job, n)) for n in numbers]
        tasks: list[Future[None]] = []
        for chunk in batches(numbers, PARTS_PER_SIGNING):
            try:
                signed = self.client.sign_parts(
                    self.run_id, job.outcome.key, job.plan.upload_id, job.local.size, chunk
                )
            except BackendError as exc:
                self._fail(job, exc.message)
                return tasks
            for part in signed.parts:
                job.parts[part.part_number] = self.uploader.signed(part)
                tasks.append(self._pool.submit(partial(self._part, job, part.part_number)))
        return tasks

    def completed(self, key: str) -> None:
        """The backend completed the upload of ``key``: nothing to abort any more."""
        self._open.pop(key, None)

    def _part(self, job: Job, number: int) -> None:
        if job.outcome.error is not None:
            return  # another part already failed the file
        assert job.plan is not None
        offset = (number - 1) * job.plan.part_size
        length = min(job.plan.part_size, job.local.size - offset)
        try:
            if number not in job.parts:  # to be bound to its digest: hashed, then signed
                job.part_digests[number] = self._digest(job, number, offset, length)
                self._sign(job, number)
            resign = partial(self._sign, job, number)
            job.etags[number] = self.uploader.send(job, offset, length, number, resign)
        except Fatal as exc:
            self._fail(job, str(exc))

    def digest_algorithm(self, job: Job) -> Literal["sha256", "md5"] | None:
        """What each part's URL is bound to: the SHA-256 when the upload was created for
        that, the MD5 (Content-MD5, which needs nothing at creation) with --checksum md5."""
        if job.plan is not None and job.plan.part_checksum == "sha256":
            return "sha256"
        return "md5" if self.uploader.learned.checksum == "md5" else None

    def _digest(self, job: Job, number: int, offset: int, length: int) -> str:
        algorithm = self.digest_algorithm(job)
        assert algorithm is not None
        assert job.plan is not None
        ahead = job.hashed_parts if algorithm == "sha256" else None
        if ahead and ahead.part_size == job.plan.part_size and (digest := ahead.get(number)):
            return digest  # from the one pass over the file (None if it ended early: read here)
        try:
            return range_digest(job.local.path, offset, length, algorithm)
        except FileNotFoundError:
            raise Fatal(DISAPPEARED) from None
        except EOFError:
            raise Fatal(SHRANK) from None
        except OSError as exc:
            raise Fatal(f"cannot read it: {exc.strerror}") from None

    def _sign(self, job: Job, number: int) -> None:
        """Sign (or sign again) one part's URL, bound to its digest when it has one."""
        assert job.plan is not None
        assert job.outcome.key is not None
        digest = job.part_digests.get(number)
        algorithm = self.digest_algorithm(job) if digest else None
        try:
            signed = self.client.sign_parts(
                self.run_id,
                job.outcome.key,
                job.plan.upload_id,
                job.local.size,
                [number],
                sha256=[digest] if digest and algorithm == "sha256" else None,
                md5=[digest] if digest and algorithm == "md5" else None,
            )
        except S3SignError as exc:
            raise Fatal(f"signing its part {number} failed: {exc.message}") from None
        job.parts[number] = self.uploader.signed(signed.parts[0])

    def abort(self, job: Job) -> None:
        """Abort the upload of ``job`` if it is still open (best effort: a lifecycle rule on
        the bucket cleans up the rest)."""
        key = job.outcome.key
        if job.plan is None or key is None or self._open.pop(key, None) is None:
            return
        with contextlib.suppress(S3SignError):
            self.client.abort(self.run_id, key, job.plan.upload_id)

    def abort_all(self) -> None:
        for job in list(self._open.values()):
            self.abort(job)
