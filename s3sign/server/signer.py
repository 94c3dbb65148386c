"""The backend's logic without its HTTP layer: mount it in any Python web app.

``UploadSigner`` takes a parsed protocol request and returns the response
(or raises ``ProtocolError`` with the HTTP status and error code to send).
``s3sign serve`` is FastAPI around it; a Flask, Django or FastAPI app of your
own can call the same methods after its own authentication.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

from s3sign.config import Settings
from s3sign.digests import guess_content_type
from s3sign.errors import ConfigError, UsageError
from s3sign.keys import PolicyError, check_run_id, file_name_in_run, object_key
from s3sign.protocol import (
    AbortRequest,
    AbortResponse,
    CompletedPart,
    CompleteFile,
    CompleteRequest,
    CompleteResponse,
    CompleteResult,
    CreateUploadsRequest,
    CreateUploadsResponse,
    ErrorInfo,
    FileResult,
    FileSpec,
    MultipartPlan,
    PartsRequest,
    PartsResponse,
    ProtocolError,
    SignedPart,
    SignedUpload,
    StatusFile,
    StatusRequest,
    StatusResponse,
    StatusResult,
    StoreChecks,
)
from s3sign.s3limits import plan_parts
from s3sign.server.handles import UploadHandles
from s3sign.server.pool import StorePool, one
from s3sign.server.verify import StoreCheck, compare, completed, failed, mismatch
from s3sign.signing.formats import iso_utc
from s3sign.signing.presign import (
    Presigner,
    SignedRequest,
    SignRequest,
    check_content_type,
    is_base64_digest,
    part_request,
)
from s3sign.signing.store import ObjectInfo, ObjectStore, StoreError

REFRESH_BEFORE = timedelta(minutes=5)
LIST_FROM = 20  # files in one complete request from which a LIST is cheaper than HEADs
STATUS_WAIT = 10.0  # seconds a status call waits for the store check started with the server
_UPLOAD_ID = re.compile(r"[\x21-\x7e]{1,1024}")  # printable ASCII, no spaces: ids and ETags


class RefreshingPresigner:
    """The server's presigner, re-made when its temporary credentials near expiry."""

    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._env = env
        self._lock = threading.Lock()
        self._current = Presigner.from_settings(settings, env)

    def __call__(self) -> Presigner:
        expires_at = self._current.credentials.expires_at
        if expires_at is not None and expires_at - datetime.now(UTC) < REFRESH_BEFORE:
            with self._lock:
                if self._current.credentials.expires_at == expires_at:
                    self._current = Presigner.from_settings(self._settings, self._env)
        return self._current


class UploadSigner:
    """Protocol v1 for one bucket: sign uploads, sign parts, complete, status, abort.

    ``run_id`` must already be authorised by the caller (``s3sign serve``
    checks the bearer token); everything else is checked here, before anything
    is signed.
    """

    def __init__(
        self,
        settings: Settings,
        presigner: Presigner | Callable[[], Presigner] | None = None,
        store: ObjectStore | None = None,
        store_checks: StoreChecks | None = None,
        handles: UploadHandles | None = None,
    ) -> None:
        if not settings.bucket:
            raise ConfigError(
                "the backend needs a bucket", hint="pass --bucket, set S3SIGN_BUCKET, or bucket:"
            )
        self.settings = settings
        self.bucket = settings.bucket
        if presigner is None:
            presigner = RefreshingPresigner(settings)
        self._presigner: Callable[[], Presigner] = (
            (lambda: presigner) if isinstance(presigner, Presigner) else presigner
        )
        self.store = store or ObjectStore(self._presigner, self.bucket, settings.transport)
        self._pool = StorePool()
        # Multipart upload ids as sealed handles (s3sign.server.handles); create_app sets
        # them from the server secret. Without, the bare ids go out and come back.
        self.handles = handles
        self._store_check = StoreCheck(self.store, settings.key_prefix, store_checks)

    def store_checks(self, wait: float = 0.0) -> StoreChecks | None:
        """What the store enforces on uploads (checked once, in the background); None
        until known. ``wait``: seconds to wait for a check under way."""
        return self._store_check.get(wait)

    # --- create / re-sign ------------------------------------------------------------

    def create_uploads(self, run_id: str, request: CreateUploadsRequest) -> CreateUploadsResponse:
        """One result per file, in order: a signed PUT, a multipart plan, or a rejection.
        Multipart uploads are started on the store pool; a file's failure is its own."""
        _check_run(run_id)
        self._check_count(len(request.files))
        seen: set[str] = set()
        results: dict[int, FileResult] = {}
        multipart: dict[int, tuple[FileSpec, str]] = {}  # uploads to start on the store
        for index, spec in enumerate(request.files):
            try:
                key = object_key(self.settings.key_prefix, run_id, spec.file_name)
                if key in seen:
                    raise PolicyError("duplicate_name", "the same file name twice in one request")
                seen.add(key)
            except PolicyError as exc:
                results[index] = _upload_rejected(spec, exc.code, exc.message)
                continue
            if spec.file_size > self.settings.multipart_threshold:
                multipart[index] = (spec, key)
            else:  # signing only: no store call
                results[index] = one(self._prepare, (spec, key), _upload_failed)
        started = self._pool.map(self._prepare, list(multipart.values()), _upload_failed)
        results.update(zip(multipart, started, strict=True))
        return CreateUploadsResponse(files=[results[index] for index in range(len(request.files))])

    def _prepare(self, item: tuple[FileSpec, str]) -> FileResult:
        spec, key = item
        try:
            return self._prepare_one(spec, key)
        except PolicyError as exc:
            return _upload_rejected(spec, exc.code, exc.message)

    def _prepare_one(self, spec: FileSpec, key: str) -> FileResult:
        self._check_size(spec.file_size)
        if spec.sha256 is not None and not is_base64_digest(spec.sha256, 32):
            raise PolicyError("invalid_checksum", "sha256 must be the base64 of 32 bytes")
        if spec.md5 is not None and not is_base64_digest(spec.md5, 16):
            raise PolicyError("invalid_checksum", "md5 must be the base64 of 16 bytes")
        if spec.sha256 is not None and spec.md5 is not None:
            raise PolicyError("invalid_checksum", "give sha256 or md5, not both")
        content_type = spec.content_type or guess_content_type(spec.file_name)
        try:  # on every path: a multipart upload's type goes to S3 in a header, too
            check_content_type(content_type)
        except UsageError as exc:
            raise PolicyError("invalid_content_type", exc.message) from None
        if spec.file_size > self.settings.multipart_threshold:
            sha256_parts = spec.part_checksum == "sha256"
            try:
                upload_id = self.store.create_multipart(key, content_type, sha256=sha256_parts)
            except StoreError as exc:
                raise PolicyError(exc.answer_code, str(exc)) from None
            part_size, part_count = plan_parts(spec.file_size, self.settings.part_size)
            plan = MultipartPlan(
                upload_id=self.handles.seal(key, upload_id) if self.handles else upload_id,
                part_size=part_size,
                part_count=part_count,
                part_checksum=spec.part_checksum,
            )
            return FileResult(file_name=spec.file_name, key=key, status="ready", multipart=plan)
        signed = self._sign(
            SignRequest(
                self.bucket,
                key,
                size=spec.file_size,
                content_type=content_type,
                sha256=spec.sha256,
                md5=spec.md5,
                expires=self.settings.expires,
            ),
        )
        upload = SignedUpload(
            method=signed.method,
            url=signed.url,
            headers=dict(signed.headers),
            expires_at=iso_utc(signed.expires_at),
        )
        return FileResult(file_name=spec.file_name, key=key, status="ready", upload=upload)

    def _check_count(self, count: int) -> None:
        limit = self.settings.max_files_per_request
        if count > limit:
            raise ProtocolError(
                422, "too_many_files", f"{count} files in one request; at most {limit}"
            )

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise PolicyError("invalid_size", "fileSize must be 0 or more")
        if size > self.settings.max_file_size:
            raise PolicyError(
                "too_large",
                f"{size} bytes is over this server's limit of {self.settings.max_file_size}",
            )

    def _sign(self, request: SignRequest) -> SignedRequest:
        try:
            return self._presigner().sign(request)  # checks the request first
        except UsageError as exc:
            raise PolicyError("invalid_file", exc.message) from None

    # --- parts -----------------------------------------------------------------------

    def sign_parts(self, run_id: str, request: PartsRequest) -> PartsResponse:
        """Part URLs, each bound to its exact length, for an upload this run started."""
        _check_run(run_id)
        self._check_key(run_id, request.key)
        upload_id = self._open(request.key, request.upload_id)
        try:
            self._check_size(request.file_size)
        except PolicyError as exc:
            raise ProtocolError(422, exc.code, exc.message) from None
        if request.file_size <= self.settings.multipart_threshold:
            raise ProtocolError(422, "not_multipart", "this file size is uploaded in one PUT")
        part_size, part_count = plan_parts(request.file_size, self.settings.part_size)
        if len(set(request.part_numbers)) != len(request.part_numbers):
            raise ProtocolError(422, "invalid_part_number", "a part number is asked twice")
        count = len(request.part_numbers)
        sha256s = _part_digests(request.sha256, count, "sha256", 32)
        md5s = _part_digests(request.md5, count, "md5", 16)
        parts = []
        for number, sha256, md5 in zip(request.part_numbers, sha256s, md5s, strict=True):
            if not 1 <= number <= part_count:
                raise ProtocolError(
                    422, "invalid_part_number", f"part numbers run from 1 to {part_count}"
                )
            signed = self._presigner().sign(
                part_request(
                    self.bucket,
                    request.key,
                    upload_id,
                    number,
                    part_size,
                    request.file_size,
                    self.settings.expires,
                    sha256=sha256,
                    md5=md5,
                )
            )
            parts.append(
                SignedPart(
                    part_number=number,
                    method=signed.method,
                    url=signed.url,
                    headers=dict(signed.headers),
                    expires_at=iso_utc(signed.expires_at),
                )
            )
        return PartsResponse(parts=parts)

    # --- complete --------------------------------------------------------------------

    def complete(self, run_id: str, request: CompleteRequest) -> CompleteResponse:
        """Assemble multipart uploads, then HEAD every object and check what was declared.

        An object whose size (or stored checksum) differs from the declared one is
        reported ``failed``: only what is verified counts. It is deleted only when it
        is the caller's own upload (the ETag its PUT got, or the upload assembled
        here); any other object under the key is kept.
        """
        _check_run(run_id)
        self._check_count(len(request.files))
        items = list(request.files)
        results: dict[int, CompleteResult] = {}
        for index, item in enumerate(items):
            self._check_key(run_id, item.key)
            self._check_upload_id(item.etag)
            if item.upload_id is not None:  # the handle, opened: a bad one fails its file
                try:
                    items[index] = replace(item, upload_id=self._open(item.key, item.upload_id))
                except ProtocolError as exc:
                    results[index] = failed(item.key, exc.code, exc.message)
        listed = self._listed([f.key for f in items if f.upload_id is None and f.sha256 is None])
        check = partial(self._complete_one, listed=listed)
        waiting = []  # multipart uploads to assemble, and files the listing did not show
        for index, item in enumerate(items):
            if index in results:
                continue
            if item.upload_id is None and item.key in listed:
                results[index] = check(item)  # no request to the store: no thread needed
            else:
                waiting.append(index)
        # The rest get a HEAD (and maybe a DELETE) each: waiting on the store, so many at once.
        checked = self._pool.map(check, [items[index] for index in waiting], _not_done)
        for index, result in zip(waiting, checked, strict=True):
            results[index] = result
        return CompleteResponse(files=[results[index] for index in range(len(request.files))])

    def _listed(self, keys: list[str]) -> dict[str, ObjectInfo]:
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
                objects, token = self.store.list_objects(prefix, keys[0][:-1], token, page)
            except StoreError:
                break
            found.update((key, info) for key, info in objects if key in wanted)
            done = len(found) == len(wanted) or (objects and objects[-1][0] >= keys[-1])
            if token is None or done:
                break
        return found

    def _complete_one(self, item: CompleteFile, listed: Mapping[str, ObjectInfo]) -> CompleteResult:
        try:
            own_etag = item.etag.strip('"') if item.etag else None
            if item.upload_id is not None:
                own_etag = self._assemble(item.key, item.upload_id, item.parts or []) or None
            info = listed.get(item.key) or self.store.head(item.key)
            if info is None:
                return failed(item.key, "not_found", "no object was stored under this key")
            problem = mismatch(item, info)
            if problem is not None:
                code, what = problem
                return failed(item.key, code, f"{what}: {self._discard(item.key, info, own_etag)}")
        except PolicyError as exc:
            return failed(item.key, exc.code, exc.message)
        except StoreError as exc:
            return failed(item.key, exc.answer_code, str(exc))
        return completed(item, info)

    def _discard(self, key: str, info: ObjectInfo, own_etag: str | None) -> str:
        """Delete a mismatched object only when it is the caller's own upload (its ETag):
        anything else under the key (an earlier good upload, another writer's) is kept."""
        if own_etag is None:
            return "the object was kept (no ETag of an upload of yours to show it is one)"
        if info.etag != own_etag:
            return "the object was kept: it is not your upload (its ETag differs)"
        if self.store.delete_if(key, own_etag):
            return "your upload was deleted"
        return "the object was kept: it changed before it could be deleted"

    def _assemble(self, key: str, upload_id: str, parts: list[CompletedPart]) -> str:
        """Complete a multipart upload: the object's ETag, or "" when an earlier call
        completed it (then this call cannot say the stored object is that upload)."""
        if not parts:
            raise PolicyError("invalid_parts", "a multipart upload needs its parts")
        if any(part.sha256 and not is_base64_digest(part.sha256, 32) for part in parts):
            raise PolicyError("invalid_checksum", "a part's sha256 is not the base64 of 32 bytes")
        ordered = sorted(
            ((part.part_number, part.etag, part.sha256) for part in parts), key=lambda p: p[:2]
        )
        try:
            return self.store.complete_multipart(key, upload_id, ordered)
        except StoreError as exc:
            if exc.code != "NoSuchUpload":
                raise
        return ""

    # --- status ----------------------------------------------------------------------

    def status(self, run_id: str, request: StatusRequest) -> StatusResponse:
        """Per file: missing, the same, or different from what is stored. Changes nothing."""
        _check_run(run_id)
        self._check_count(len(request.files))
        checks = self.store_checks(STATUS_WAIT)
        results: dict[int, StatusResult] = {}
        keyed: list[tuple[int, str]] = []
        for index, spec in enumerate(request.files):
            try:
                keyed.append((index, object_key(self.settings.key_prefix, run_id, spec.file_name)))
            except PolicyError as exc:
                results[index] = _status_rejected(spec.file_name, exc.code, exc.message)
        # Sizes and ETags come from a LIST; only a checksum to compare needs a HEAD each.
        listed = self._listed(
            [key for index, key in keyed if not _wants_checksum(request.files[index])]
        )

        def status_one(index: int, key: str) -> StatusResult:
            spec = request.files[index]
            try:
                info = listed.get(key) or self.store.head(key)
            except StoreError as exc:
                return _status_rejected(spec.file_name, exc.answer_code, str(exc))
            return compare(spec, key, info, checks)

        def fail(pair: tuple[int, str], code: str, message: str) -> StatusResult:
            return _status_rejected(request.files[pair[0]].file_name, code, message)

        answers = self._pool.map(lambda pair: status_one(*pair), keyed, fail)
        for (index, _), result in zip(keyed, answers, strict=True):
            results[index] = result
        return StatusResponse(files=[results[index] for index in range(len(request.files))])

    # --- abort -----------------------------------------------------------------------

    def abort(self, run_id: str, request: AbortRequest) -> AbortResponse:
        """Abandon a multipart upload (freeing its parts), or take back a single PUT: its
        object is deleted only while it is still that upload (the ETag it got)."""
        _check_run(run_id)
        self._check_key(run_id, request.key)
        self._check_upload_id(request.etag)
        if (request.upload_id is None) == (request.etag is None):
            raise ProtocolError(422, "invalid_request", "give one of uploadId and etag")
        try:
            if request.etag is not None:
                gone = self.store.delete_if(request.key, request.etag.strip('"'))
                return AbortResponse(key=request.key, status="aborted" if gone else "kept")
            assert request.upload_id is not None
            upload_id = self._open(request.key, request.upload_id)
            self.store.abort_multipart(request.key, upload_id)
        except StoreError as exc:
            raise ProtocolError(exc.status, exc.code, str(exc)) from None
        return AbortResponse(key=request.key, status="aborted")

    def _open(self, key: str, handle: str) -> str:
        """The upload id for ``key`` inside the worker's handle (422 ``invalid_upload_id``
        for one that was not given out for this key)."""
        if self.handles is None:
            self._check_upload_id(handle)
            return handle
        try:
            return self.handles.open(key, handle)
        except PolicyError as exc:
            raise ProtocolError(422, exc.code, exc.message) from None

    def _check_upload_id(self, upload_id: str | None) -> None:
        if upload_id is not None and not _UPLOAD_ID.fullmatch(upload_id):
            raise ProtocolError(422, "invalid_upload_id", "not an uploadId or ETag S3 hands out")

    def _check_key(self, run_id: str, key: str) -> None:
        try:
            file_name_in_run(self.settings.key_prefix, run_id, key)
        except PolicyError as exc:
            status = 403 if exc.code == "key_outside_run" else 422
            raise ProtocolError(status, exc.code, exc.message) from None


def _part_digests(
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


def _wants_checksum(spec: StatusFile) -> bool:
    return spec.sha256 is not None or spec.parts_sha256 is not None


def _upload_rejected(spec: FileSpec, code: str, message: str) -> FileResult:
    error = ErrorInfo(code=code, message=message)
    return FileResult(file_name=spec.file_name, status="rejected", error=error)


def _upload_failed(item: tuple[FileSpec, str], code: str, message: str) -> FileResult:
    return _upload_rejected(item[0], code, message)


def _not_done(item: CompleteFile, code: str, message: str) -> CompleteResult:
    return failed(item.key, code, message)


def _status_rejected(file_name: str, code: str, message: str) -> StatusResult:
    return StatusResult(file_name, "rejected", error=ErrorInfo(code=code, message=message))


def _check_run(run_id: str) -> None:
    try:
        check_run_id(run_id)
    except PolicyError as exc:
        raise ProtocolError(400, exc.code, exc.message) from None
