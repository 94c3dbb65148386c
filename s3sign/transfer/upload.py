"""One upload (a whole file or one part) with its retries, and what S3's answers mean.

- Connection errors, 408, 429 and 5xx are retried with backoff (``s3sign.retry``); a
  checksum or size mismatch is not. An expired URL is signed again and does not count as
  an attempt.
- A file that changed since it was listed fails with a clear message instead of becoming a
  mismatched object: S3 refuses the body when a checksum is bound, and otherwise what the
  PUT stored is taken back (deleted through the backend, by its ETag).
- The store's health is shared by every upload of the push (``StoreHealth``): past a few
  files in a row without any answer, the store is down and the rest fail at once.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from s3sign.config import Checksum, Settings
from s3sign.errors import S3SignError
from s3sign.http.connections import Connections
from s3sign.http.wire import BodyShrank, network_problem
from s3sign.protocol import StoreChecks
from s3sign.retry import RETRY_STATUSES, backoff
from s3sign.s3xml import s3_error
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.jobs import (
    DISAPPEARED,
    SHRANK,
    STORE_DOWN,
    AlreadyExists,
    Expired,
    Fatal,
    Job,
    Retryable,
    Signed,
    check_unchanged,
)
from s3sign.transfer.pool import StoreHealth
from s3sign.transfer.report import Reporter

if TYPE_CHECKING:
    from s3sign.transfer.push import PushOptions

# Until the backend says (/v1/info): the server's default, from the one place it is set.
DEFAULT_MULTIPART_THRESHOLD = Settings().multipart_threshold
RESIGN_MARGIN = timedelta(seconds=30)
_CHECKSUM_ERRORS = frozenset({"BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest"})


@dataclass
class Learned:
    """What the push knows of its backend and store: ``/v1/info``, else the defaults."""

    checksum: Checksum  # what each upload's URL is bound to
    max_files_per_request: int
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    part_size: int | None = None
    key_prefix: str | None = None
    store: StoreChecks | None = None  # what the store enforces, as the backend says


class Uploader:
    """Sends one file or part to its pre-signed URL until S3 takes it or it cannot."""

    def __init__(
        self,
        client: BackendClient,
        options: PushOptions,
        reporter: Reporter,
        learned: Learned,
        http: Connections | None = None,
    ) -> None:
        """``http``: the connections to S3 (by default, new ones by ``options.transport``)."""
        self.client = client
        self.options = options
        self.reporter = reporter
        self.learned = learned
        self.health = StoreHealth(options.concurrency)
        self._http = http or Connections(options.transport, "s3", options.stall_timeout)

    def signed(self, upload: Any) -> Signed:
        """A URL from the backend, to be signed again 30 s (or a quarter of its life) before
        it expires: by the backend's clock, which S3 shares, not by this machine's."""
        expires = datetime.fromisoformat(upload.expires_at.replace("Z", "+00:00"))
        expires -= self.client.clock_offset  # on this machine's clock
        margin = min(RESIGN_MARGIN, (expires - datetime.now(UTC)) / 4)
        return Signed(upload.method, upload.url, dict(upload.headers), expires - margin)

    def send(
        self, job: Job, offset: int, length: int, part: int | None, resign: Callable[[], None]
    ) -> str:
        """Upload ``length`` bytes from ``offset`` (part ``part``, or the whole file) with
        retries; ``resign`` signs its URL again. The ETag S3 gave it; ``Fatal`` if it cannot."""
        with job.lock:
            first, job.started = not job.started, True
        if first:  # now, not when queued: a live display shows what is really moving
            self.reporter.file_started(job.local.name, job.local.size)
        attempt, resigned, successes_at_first_failure = 0, 0, -1
        while True:
            attempt += 1
            if self.health.down:
                raise Fatal(STORE_DOWN)
            signed = job.parts[part] if part is not None else job.upload
            assert signed is not None
            try:
                if datetime.now(UTC) >= signed.refresh_at:
                    raise Expired
                etag = self._put(job, signed, offset, length, part)
                self.health.answered()
                return etag
            except Expired:
                resigned += 1
                if resigned > self.options.attempts:
                    raise Fatal("the URL kept expiring; check this machine's clock") from None
                resign()
                attempt -= 1  # a fresh URL is not a failed attempt
            except Retryable as exc:
                if successes_at_first_failure < 0:
                    successes_at_first_failure = self.health.successes
                # Out of attempts? Not while other uploads get through: S3 is up and this
                # one was unlucky (a flaky network, a throttled prefix), so it goes on, up to
                # twice the attempts, rather than fail a CI job over a transient fault.
                unlucky = self.health.successes > successes_at_first_failure
                if attempt >= self.options.attempts * (2 if unlucky else 1):
                    if exc.network:
                        self.health.unanswered()
                    raise Fatal(f"{exc} (after {attempt} attempts)") from None
                with job.lock:
                    job.retries += 1
                self.reporter.retrying(job.local.name, attempt, str(exc))
                time.sleep(backoff(attempt))

    def _put(self, job: Job, signed: Signed, offset: int, length: int, part: int | None) -> str:
        local = job.local
        check_unchanged(local, "since it was listed")
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
            raise Fatal(SHRANK) from None
        except FileNotFoundError:
            raise Fatal(DISAPPEARED) from None
        except PermissionError:
            raise Fatal("the file cannot be read: permission denied") from None
        except OSError as exc:
            self.reporter.advanced(local.name, -sent)
            raise Retryable(f"network error: {network_problem(exc)}", network=True) from None
        except ValueError as exc:  # a header or URL from the backend that HTTP cannot carry
            raise Fatal(f"the backend's upload URL cannot be sent: {exc}") from None
        if 200 <= response.status < 300:
            etag = response.headers.get("etag", "").strip('"')
            try:
                check_unchanged(local, "while it was being uploaded")
                self._check_etag(job, part, etag)
            except Fatal as exc:
                if part is None:  # a part is left to the abort of its upload
                    raise Fatal(f"{exc}; {self._take_back(job, etag)}") from None
                raise
            return etag
        self.reporter.advanced(local.name, -sent)
        raise _refusal(job, response.status, response.data)

    def _check_etag(self, job: Job, part: int | None, etag: str) -> None:
        """Where the store's ETag is the MD5 of the bytes it received (as the backend found
        out), it shows whether it stored what the file's MD5 was taken of: this is the check
        on stores that verify no Content-MD5 (moto)."""
        store = self.learned.store
        if self.learned.checksum != "md5" or not (store and store.etag_is_md5):
            return
        md5 = job.spec.md5 if part is None else job.part_digests.get(part)
        if md5 and etag.lower() != base64.b64decode(md5).hex():
            raise Fatal(
                "S3 stored other bytes than were read from the file: its ETag is not their MD5 "
                "(changed on the way?)"
            )

    def _take_back(self, job: Job, etag: str) -> str:
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


def _refusal(job: Job, status: int, body: bytes) -> Exception:
    """What an S3 error answer means for this upload: sign again, retry, or give up."""
    code, message = s3_error(body) or ("", "")
    if status == 403 and "expired" in message.lower():
        return Expired()
    if status in RETRY_STATUSES:
        return Retryable(f"S3 answered {status} {code}".rstrip())
    if status == 412 and code == "PreconditionFailed":  # the signed If-None-Match: *
        return AlreadyExists()
    if code in _CHECKSUM_ERRORS:
        return Fatal(
            "S3 refused the body: it differs from the checksum taken before the upload "
            "(did the file change?)"
        )
    if code == "SignatureDoesNotMatch":
        check_unchanged(job.local, "while it was being uploaded")
    return Fatal(f"S3 refused the upload: {status} {code} {message}".rstrip())
