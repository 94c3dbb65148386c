"""The backend's logic without its HTTP layer: mount it in any Python web app.

``UploadSigner`` takes a parsed protocol request and returns the response
(or raises ``ProtocolError`` with the HTTP status and error code to send).
``s3sign serve`` is FastAPI around it; a Flask, Django or FastAPI app of your
own can call the same methods after its own authentication.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial

from s3sign.config import Settings
from s3sign.errors import ConfigError, UsageError
from s3sign.keys import PolicyError, object_key
from s3sign.protocol import (
    AbortRequest,
    AbortResponse,
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
from s3sign.server import rules
from s3sign.server.handles import UploadHandles
from s3sign.server.pool import StorePool, one
from s3sign.server.quotas import NO_QUOTA, Quota, Quotas, Wanted
from s3sign.server.reader import RunReader
from s3sign.server.revocations import Revocations
from s3sign.server.seals import Seals
from s3sign.server.verify import (
    ALREADY_EXISTS,
    StoreCheck,
    assemble,
    compare,
    completed,
    discard,
    failed,
    listed_objects,
    mismatch,
    part_digests,
)
from s3sign.signing.presign import (
    Presigner,
    RefreshingPresigner,
    SignedRequest,
    SignRequest,
    part_request,
)
from s3sign.signing.store import ObjectInfo, ObjectStore, StoreError
from s3sign.units import iso_utc

STATUS_WAIT = 10.0  # seconds a status call waits for the store check started with the server
WRITE_ONCE = (("If-None-Match", "*"),)  # signed into a PUT: S3 stores it only under a free key
WRITE_ONCE_KEPT = "the run is write-once: the backend deletes nothing stored in it"


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
        rules = settings.object_rules
        self.store = store or ObjectStore(self._presigner, self.bucket, settings.transport, rules)
        # signed into each PUT URL (a multipart create: the store sends its own rules)
        self._put_headers = rules.headers + (() if settings.overwrite else WRITE_ONCE)
        self._pool = StorePool()
        # Multipart upload ids as sealed handles (s3sign.server.handles); create_app sets
        # them from the server secret. Without, the bare ids go out and come back.
        self.handles = handles
        self._store_check = StoreCheck(
            self.store, settings.key_prefix, store_checks, write_once=not settings.overwrite
        )
        self.seals = Seals(self.store, settings.key_prefix, settings.seal_cache)
        self.revocations = Revocations(self.store, settings.key_prefix, settings.revocation_cache)
        self.quota = Quota(settings.max_run_bytes, settings.max_run_files)
        self.quotas = Quotas(self.store, settings.key_prefix)

    def reader(self) -> RunReader:
        """The read half (list a run, sign downloads), on the same store and pool."""
        return RunReader(self.settings, self._presigner, self.store, self._pool)

    def store_checks(self, wait: float = 0.0) -> StoreChecks | None:
        """What the store enforces on uploads (checked once, in the background); None
        until known. ``wait``: seconds to wait for a check under way."""
        return self._store_check.get(wait)

    # --- create / re-sign ------------------------------------------------------------

    def create_uploads(
        self, run_id: str, request: CreateUploadsRequest, quota: Quota = NO_QUOTA
    ) -> CreateUploadsResponse:
        """One result per file, in order: a signed PUT, a multipart plan, or a rejection.
        Multipart uploads are started on the store pool; a file's failure is its own.
        ``quota``: the token's, which may lower the server's for this run."""
        rules.check_run(run_id)
        rules.check_count(len(request.files), self.settings.max_files_per_request)
        seen: set[str] = set()
        results: dict[int, FileResult] = {}
        keyed: dict[int, tuple[FileSpec, str]] = {}
        for index, spec in enumerate(request.files):
            try:
                key = object_key(self.settings.key_prefix, run_id, spec.file_name)
                if key in seen:
                    raise PolicyError("duplicate_name", "the same file name twice in one request")
                seen.add(key)
            except PolicyError as exc:
                results[index] = _upload_rejected(spec, exc.code, exc.message)
                continue
            keyed[index] = (spec, key)
        quota = self.quota.lowered(quota)
        if quota:
            results.update(self._over_quota(run_id, quota, keyed))
        on_store: dict[int, tuple[FileSpec, str]] = {}  # a store call each: on the pool
        look_up = self._looks_up()
        for index, (spec, key) in keyed.items():
            if index in results:
                continue
            if look_up or spec.file_size > self.settings.multipart_threshold:
                on_store[index] = (spec, key)
            else:  # signing only: no store call
                results[index] = one(self._prepare, (spec, key), _upload_failed)
        started = self._pool.map(self._prepare, list(on_store.values()), _upload_failed)
        results.update(zip(on_store, started, strict=True))
        return CreateUploadsResponse(files=[results[index] for index in range(len(request.files))])

    def _over_quota(
        self, run_id: str, quota: Quota, keyed: dict[int, tuple[FileSpec, str]]
    ) -> dict[int, FileResult]:
        """The files the run's quota leaves out, refused; the others are counted as signed.
        A file whose size will be refused anyway is not counted."""
        limit, threshold = self.settings.max_file_size, self.settings.multipart_threshold
        counted = [index for index, (spec, _) in keyed.items() if 0 <= spec.file_size <= limit]
        wanted = []
        for index in counted:
            spec, key = keyed[index]
            # How long its uploads may go on: a PUT's URL, a multipart upload's token.
            multipart = spec.file_size > threshold
            seconds = self.settings.max_token_ttl if multipart else self.settings.expires
            wanted.append(Wanted(key, spec.file_size, seconds))
        try:
            answers = self.quotas.admit(run_id, quota, wanted)
        except StoreError as exc:
            return {i: _upload_rejected(keyed[i][0], exc.answer_code, str(exc)) for i in counted}
        return {
            index: _upload_rejected(keyed[index][0], "quota_exceeded", why)
            for index, why in zip(counted, answers, strict=True)
            if why is not None
        }

    def _looks_up(self) -> bool:
        """Write-once on a store not known to refuse ``If-None-Match: *``: every file's key
        is looked up (HEAD) before it is signed, which leaves a race as long as the upload."""
        checks = self.store_checks()
        return not self.settings.overwrite and not (checks and checks.if_none_match)

    def _prepare(self, item: tuple[FileSpec, str]) -> FileResult:
        spec, key = item
        try:
            return self._prepare_one(spec, key)
        except PolicyError as exc:
            return _upload_rejected(spec, exc.code, exc.message)

    def _prepare_one(self, spec: FileSpec, key: str) -> FileResult:
        content_type = rules.checked_spec(spec, self.settings.max_file_size)
        multipart = spec.file_size > self.settings.multipart_threshold
        # Write-once: a multipart file is told now, not after its parts (completing would be
        # refused); a single PUT is refused by the store, unless it ignores If-None-Match.
        if not self.settings.overwrite and (multipart or self._looks_up()):
            try:
                taken = self.store.head(key) is not None
            except StoreError as exc:
                raise PolicyError(exc.answer_code, str(exc)) from None
            if taken:
                raise PolicyError("already_exists", ALREADY_EXISTS)
        if multipart:
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
                headers=self._put_headers,
            ),
        )
        upload = SignedUpload(
            method=signed.method,
            url=signed.url,
            headers=dict(signed.headers),
            expires_at=iso_utc(signed.expires_at),
        )
        return FileResult(file_name=spec.file_name, key=key, status="ready", upload=upload)

    def _sign(self, request: SignRequest) -> SignedRequest:
        try:
            return self._presigner().sign(request)  # checks the request first
        except UsageError as exc:
            raise PolicyError("invalid_file", exc.message) from None

    # --- parts -----------------------------------------------------------------------

    def sign_parts(self, run_id: str, request: PartsRequest) -> PartsResponse:
        """Part URLs, each bound to its exact length, for an upload this run started."""
        rules.check_run(run_id)
        rules.check_key(self.settings.key_prefix, run_id, request.key)
        upload_id = self._open(request.key, request.upload_id)
        try:
            rules.check_size(request.file_size, self.settings.max_file_size)
        except PolicyError as exc:
            raise ProtocolError(422, exc.code, exc.message) from None
        if request.file_size <= self.settings.multipart_threshold:
            raise ProtocolError(422, "not_multipart", "this file size is uploaded in one PUT")
        part_size, part_count = plan_parts(request.file_size, self.settings.part_size)
        if len(set(request.part_numbers)) != len(request.part_numbers):
            raise ProtocolError(422, "invalid_part_number", "a part number is asked twice")
        count = len(request.part_numbers)
        sha256s = part_digests(request.sha256, count, "sha256", 32)
        md5s = part_digests(request.md5, count, "md5", 16)
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
        rules.check_run(run_id)
        rules.check_count(len(request.files), self.settings.max_files_per_request)
        items = list(request.files)
        results: dict[int, CompleteResult] = {}
        for index, item in enumerate(items):
            rules.check_key(self.settings.key_prefix, run_id, item.key)
            rules.check_upload_id(item.etag)
            if item.upload_id is not None:  # the handle, opened: a bad one fails its file
                try:
                    items[index] = replace(item, upload_id=self._open(item.key, item.upload_id))
                except ProtocolError as exc:
                    results[index] = failed(item.key, exc.code, exc.message)
        # A listing tells size and ETag, not the bucket's rules: then each file gets a HEAD.
        unchecked = (
            []
            if self.settings.object_rules.headers
            else [f.key for f in items if f.upload_id is None and f.sha256 is None]
        )
        listed = listed_objects(self.store, unchecked)
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

    def _complete_one(self, item: CompleteFile, listed: Mapping[str, ObjectInfo]) -> CompleteResult:
        try:
            write_once = not self.settings.overwrite
            own_etag = item.etag.strip('"') if item.etag else None
            if item.upload_id is not None:
                parts = item.parts or []
                own_etag = assemble(self.store, item.key, item.upload_id, parts, write_once)
                own_etag = own_etag or None
            elif write_once:  # only what this server assembled is known to be the caller's
                own_etag = None
            info = listed.get(item.key) or self.store.head(item.key)
            if info is None:
                return failed(item.key, "not_found", "no object was stored under this key")
            problem = mismatch(item, info, self.settings.object_rules)
            if problem is not None:
                code, what = problem
                if own_etag is None and write_once:
                    return failed(item.key, code, f"{what}: {WRITE_ONCE_KEPT}")
                kept = discard(self.store, item.key, info, own_etag)
                return failed(item.key, code, f"{what}: {kept}")
        except PolicyError as exc:
            return failed(item.key, exc.code, exc.message)
        except StoreError as exc:
            return failed(item.key, exc.answer_code, str(exc))
        return completed(item, info)

    # --- status ----------------------------------------------------------------------

    def status(self, run_id: str, request: StatusRequest) -> StatusResponse:
        """Per file: missing, the same, or different from what is stored. Changes nothing."""
        rules.check_run(run_id)
        rules.check_count(len(request.files), self.settings.max_files_per_request)
        checks = self.store_checks(STATUS_WAIT)
        results: dict[int, StatusResult] = {}
        keyed: list[tuple[int, str]] = []
        for index, spec in enumerate(request.files):
            try:
                keyed.append((index, object_key(self.settings.key_prefix, run_id, spec.file_name)))
            except PolicyError as exc:
                results[index] = _status_rejected(spec.file_name, exc.code, exc.message)
        # Sizes and ETags come from a LIST; only a checksum to compare needs a HEAD each.
        listed = listed_objects(
            self.store, [key for index, key in keyed if not _wants_checksum(request.files[index])]
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
        rules.check_run(run_id)
        rules.check_key(self.settings.key_prefix, run_id, request.key)
        rules.check_upload_id(request.etag)
        if (request.upload_id is None) == (request.etag is None):
            raise ProtocolError(422, "invalid_request", "give one of uploadId and etag")
        if request.etag is not None and not self.settings.overwrite:
            raise ProtocolError(403, "write_once", f"not deleted: {WRITE_ONCE_KEPT}")
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
            rules.check_upload_id(handle)
            return handle
        try:
            return self.handles.open(key, handle)
        except PolicyError as exc:
            raise ProtocolError(422, exc.code, exc.message) from None


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
