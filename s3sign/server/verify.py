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
import os
import threading
import time
from typing import Literal

from s3sign.digests import composite_sha256
from s3sign.keys import PolicyError
from s3sign.objectrules import NO_RULES, ObjectRules
from s3sign.protocol import (
    CompletedPart,
    CompleteFile,
    CompleteResult,
    ErrorInfo,
    ProtocolError,
    StatusFile,
    StatusResult,
    StoreChecks,
)
from s3sign.server.storecheck import check_store, describe
from s3sign.signing.presign import is_base64_digest
from s3sign.signing.store import ObjectInfo, ObjectStore, StoreError

ALREADY_EXISTS = "a file of this name is stored in the run already, and the run is write-once"
CHECK_AGAIN_AFTER = 60.0  # seconds between store checks while they fail
LIST_FROM = 20  # files in one request from which a LIST is cheaper than HEADs
log = logging.getLogger("s3sign.server")


def failed(key: str, code: str, message: str) -> CompleteResult:
    return CompleteResult(key=key, status="failed", error=ErrorInfo(code=code, message=message))


def mismatch(
    item: CompleteFile, info: ObjectInfo, rules: ObjectRules = NO_RULES
) -> tuple[str, str] | None:
    """(code, what differs) between a declared file and the stored object, or None;
    ``rule_not_applied`` when the object lacks the bucket's rules (``info`` from a HEAD).

    The object this server assembled from parts has S3's composite checksum (some
    stores write it ``BASE64-N``, some without ``-N``), a single PUT the SHA-256 of
    its body: the whole-file SHA-256 is never compared with a composite.
    """
    if info.size != item.file_size:
        return "size_mismatch", f"stored {info.size} bytes, declared {item.file_size}"
    missing = rules.missing(dict(info.rule_headers))
    if missing is not None:
        return "rule_not_applied", f"{missing}, as the server's settings ask"
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

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        known: StoreChecks | None = None,
        write_once: bool = False,
    ) -> None:
        self._store, self._prefix, self._write_once = store, prefix, write_once
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
            if self._write_once and not result.if_none_match:
                log.warning(
                    "write-once (overwrite: false), but the object store does not refuse "
                    "If-None-Match: *: each file's key is looked up before it is signed, "
                    "and a file stored meanwhile may still be replaced"
                )
        except Exception as exc:  # any failure: unknown for now, tried again later
            log.warning("could not check what the object store enforces: %s", exc)
        with self._lock:
            self._result = result
            self._running = None
            self._again_at = time.monotonic() + CHECK_AGAIN_AFTER


# --- what is stored: many objects at once, one's own upload taken back, parts assembled


def listed_objects(store: ObjectStore, keys: list[str]) -> dict[str, ObjectInfo]:
    """Size and ETag of many objects from a few LISTs instead of a HEAD each.

    Only for keys whose checksum is not wanted (a LIST does not show checksums):
    a worker that had the checksum bound into the URL needs no second check,
    S3 refused any other body. Keys the listing does not show get a HEAD.
    """
    keys = sorted(keys)
    if len(keys) < LIST_FROM:
        return {}
    wanted, found = set(keys), dict[str, ObjectInfo]()
    prefix = os.path.commonprefix(keys)  # noqa: RUF071 - S3 prefixes are string prefixes
    token: str | None = None
    for _ in range(2 + 2 * len(keys) // 1000):  # a bound: the run may hold other objects
        try:
            # No more than the keys still missing: a page of 1,000 costs the store and
            # this server ten times what a page of the batch's 100 does.
            page = min(1000, len(wanted) - len(found))
            objects, token = store.list_objects(prefix, keys[0][:-1], token, page)
        except StoreError:
            break
        found.update((key, info) for key, info in objects if key in wanted)
        done = len(found) == len(wanted) or (objects and objects[-1][0] >= keys[-1])
        if token is None or done:
            break
    return found


def discard(store: ObjectStore, key: str, info: ObjectInfo, own_etag: str | None) -> str:
    """Delete a mismatched object only when it is the caller's own upload (its ETag):
    anything else under the key (an earlier good upload, another writer's) is kept."""
    if own_etag is None:
        return "the object was kept (no ETag of an upload of yours to show it is one)"
    if info.etag != own_etag:
        return "the object was kept: it is not your upload (its ETag differs)"
    if store.delete_if(key, own_etag):
        return "your upload was deleted"
    return "the object was kept: it changed before it could be deleted"


def assemble(
    store: ObjectStore,
    key: str,
    upload_id: str,
    parts: list[CompletedPart],
    write_once: bool = False,
) -> str:
    """Complete a multipart upload: the object's ETag, or "" when an earlier call
    completed it (then this call cannot say the stored object is that upload).

    ``write_once``: only where nothing is stored under the key (``If-None-Match: *``); when
    something is, the upload is aborted (its parts freed) and the file is ``already_exists``.
    """
    if not parts:
        raise PolicyError("invalid_parts", "a multipart upload needs its parts")
    if any(part.sha256 and not is_base64_digest(part.sha256, 32) for part in parts):
        raise PolicyError("invalid_checksum", "a part's sha256 is not the base64 of 32 bytes")
    ordered = sorted(
        ((part.part_number, part.etag, part.sha256) for part in parts), key=lambda p: p[:2]
    )
    try:
        return store.complete_multipart(key, upload_id, ordered, if_none_match=write_once)
    except StoreError as exc:
        if exc.code == "PreconditionFailed" and write_once:
            # Another object under the key, unless this upload is gone: completed by an
            # earlier call whose answer was lost (then the stored object may be this one).
            if store.abort_multipart(key, upload_id):
                raise PolicyError("already_exists", ALREADY_EXISTS) from None
        elif exc.code != "NoSuchUpload":
            raise
    return ""


def part_digests(
    digests: list[str] | None, count: int, name: str, size: int
) -> list[str] | list[None]:
    """One digest per asked part (or None each), each checked to be base64 of ``size`` bytes."""
    if digests is None:
        return [None] * count
    if len(digests) != count:
        raise ProtocolError(422, "invalid_checksum", f"{name} needs one digest per part number")
    if not all(is_base64_digest(digest, size) for digest in digests):
        raise ProtocolError(422, "invalid_checksum", f"each {name} is the base64 of {size} bytes")
    return digests
