"""What the server concludes from a stored object: complete's checks, status's comparison,
and what the store was seen to enforce (checked once in the background).

The rules are the same for both calls: the server decides what a stored checksum
is from what it knows (it assembled the object from parts, or not), never from
the shape of a header value; and a stored checksum proves nothing unless the
store verified it on upload (``StoreChecks``), so a store that echoes a declared
SHA-256 back without checking it is never taken at its word.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal

from s3sign.digests import composite_sha256
from s3sign.protocol import (
    CompletedPart,
    CompleteFile,
    CompleteResult,
    ErrorInfo,
    StatusFile,
    StatusResult,
    StoreChecks,
)
from s3sign.server.storecheck import check_store, describe
from s3sign.signing.store import ObjectInfo, ObjectStore

CHECK_AGAIN_AFTER = 60.0  # seconds between store checks while they fail
log = logging.getLogger("s3sign.server")


def failed(key: str, code: str, message: str) -> CompleteResult:
    return CompleteResult(key=key, status="failed", error=ErrorInfo(code=code, message=message))


def mismatch(item: CompleteFile, info: ObjectInfo) -> tuple[str, str] | None:
    """(code, what differs) between a declared file and the stored object, or None.

    The object this server assembled from parts has S3's composite checksum (some
    stores write it ``BASE64-N``, some without ``-N``), a single PUT the SHA-256 of
    its body: the whole-file SHA-256 is never compared with a composite.
    """
    if info.size != item.file_size:
        return "size_mismatch", f"stored {info.size} bytes, declared {item.file_size}"
    if info.checksum is None:
        return None
    if item.upload_id is None or info.checksum_type == "FULL_OBJECT":
        expected = item.sha256
    else:
        expected = parts_sha256(item.parts or [])
    if expected is not None and base(info.checksum) != base(expected):
        return "checksum_mismatch", "the stored SHA-256 differs"
    return None


def completed(item: CompleteFile, info: ObjectInfo) -> CompleteResult:
    """A verified file's result: what the store holds, the composite written ``BASE64-N``."""
    composite = item.upload_id is not None and info.checksum_type != "FULL_OBJECT"
    count = len(item.parts or [])
    return CompleteResult(
        key=item.key,
        status="complete",
        size=info.size,
        etag=info.etag,
        sha256=None if composite else info.checksum,
        parts_sha256=f"{base(info.checksum)}-{count}" if composite and info.checksum else None,
    )


Match = Literal["sha256", "partsSha256", "etag", "size"]


def compare(  # noqa: PLR0911 - one answer per rule, in order
    spec: StatusFile, key: str, info: ObjectInfo | None, checks: StoreChecks | None
) -> StatusResult:
    """``missing``, ``same`` or ``different``: ``same`` only from a checksum the store
    verified (or computed itself: an ETag that is the MD5), or from the sizes when the
    caller gave no digest at all; ``different`` too when sameness cannot be shown."""
    if info is None:
        return StatusResult(spec.file_name, "missing", key=key)
    stored = info

    def result(same: bool, match: Match | None) -> StatusResult:
        return StatusResult(
            spec.file_name,
            "same" if same else "different",
            key=key,
            size=stored.size,
            etag=stored.etag,
            sha256=None if stored.multipart else stored.checksum,
            parts_sha256=stored.checksum if stored.multipart else None,
            match=match,
        )

    if info.size != spec.file_size:
        return result(False, "size")
    verified = bool(checks and checks.sha256)  # a stored SHA-256 was checked on upload
    if verified and info.checksum and info.multipart and spec.parts_sha256:
        return result(base(info.checksum) == base(spec.parts_sha256), "partsSha256")
    if verified and info.checksum and not info.multipart and spec.sha256:
        return result(info.checksum == spec.sha256, "sha256")
    if checks and checks.etag_is_md5 and spec.etag:
        return result(info.etag.lower() == spec.etag.strip('"').lower(), "etag")
    if not (spec.sha256 or spec.parts_sha256 or spec.etag):
        return result(True, "size")
    return result(False, None)  # nothing the store vouches for shows it is the same


def base(checksum: str) -> str:
    """A checksum without the ``-N`` part count some stores append to a composite."""
    return checksum.split("-", 1)[0]


def parts_sha256(parts: list[CompletedPart]) -> str | None:
    """S3's composite checksum of a multipart object: the SHA-256 of the parts' SHA-256s, -N.

    None unless every part declared its SHA-256: then nothing is compared.
    """
    ordered = sorted(parts, key=lambda part: part.part_number)
    digests = [part.sha256 for part in ordered if part.sha256 is not None]
    return composite_sha256(digests) if digests and len(digests) == len(ordered) else None


class StoreCheck:
    """``StoreChecks`` for one store and key prefix: found out once, in the background, and
    again after a failure (at most every minute); None until known."""

    def __init__(self, store: ObjectStore, prefix: str, known: StoreChecks | None = None) -> None:
        self._store, self._prefix = store, prefix
        self._result = known
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self._again_at = 0.0

    def get(self, wait: float = 0.0) -> StoreChecks | None:
        """The checks, starting them if need be and waiting up to ``wait`` seconds."""
        with self._lock:
            idle = self._running is None and time.monotonic() >= self._again_at
            if self._result is None and idle:
                self._running = threading.Thread(
                    target=self._run, name="s3sign-store-check", daemon=True
                )
                self._running.start()
            running = self._running
        if running is not None and wait > 0:
            running.join(wait)
        return self._result

    def _run(self) -> None:
        result: StoreChecks | None = None
        try:
            result = check_store(self._store, self._prefix)
            log.info("the object store %s", describe(result))
        except Exception as exc:  # any failure: unknown for now, tried again later
            log.warning("could not check what the object store enforces: %s", exc)
        with self._lock:
            self._result = result
            self._running = None
            self._again_at = time.monotonic() + CHECK_AGAIN_AFTER
