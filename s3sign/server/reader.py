"""The read half of protocol v1: a run's files listed page by page through the store's
own listing (constant memory on both sides, whatever the run's size), and pre-signed GETs
for the files a worker asks for, each with what the stored object is so that the worker
can check the bytes it gets.

The caller (``create_app``) has checked that the token may read the run.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from s3sign.config import Settings
from s3sign.keys import PolicyError, check_file_name, object_key, run_prefix
from s3sign.protocol import (
    DownloadResult,
    DownloadsRequest,
    DownloadsResponse,
    ErrorInfo,
    FilesPage,
    ProtocolError,
    SignedUpload,
    StoredFile,
)
from s3sign.server import rules
from s3sign.server.pool import StorePool
from s3sign.signing.presign import Presigner, SignRequest
from s3sign.signing.store import ObjectInfo, ObjectStore, StoreError
from s3sign.units import iso_utc

MAX_PAGE = 1000  # files per page: S3's own largest listing page
MAX_DETAILED_PAGE = 200  # with details, a HEAD each: a smaller page


class RunReader:
    """Lists a run and signs downloads from it, for one bucket."""

    def __init__(
        self,
        settings: Settings,
        presigner: Callable[[], Presigner],
        store: ObjectStore,
        pool: StorePool,
    ) -> None:
        self.settings = settings
        self.presigner = presigner
        self.store = store
        self._pool = pool

    def files(
        self,
        run_id: str,
        prefix: str = "",
        cursor: str | None = None,
        limit: int | None = None,
        details: bool = False,
    ) -> FilesPage:
        """One page of the run's files under ``prefix`` (a file-name prefix), in key order,
        after ``cursor`` (the last name of the page before); ``limit`` files at most (by
        default, and at most, 1,000, or 200 with ``details``: a HEAD each)."""
        rules.check_run(run_id)
        most = MAX_DETAILED_PAGE if details else MAX_PAGE
        limit = most if limit is None else limit
        if not 1 <= limit <= most:
            raise ProtocolError(422, "invalid_request", f"limit: 1 to {most}")
        if any(ch < " " or ch == "\x7f" for ch in prefix) or "\\" in prefix:
            raise ProtocolError(422, "invalid_request", "prefix: a file-name prefix")
        base = run_prefix(self.settings.key_prefix, run_id)
        after = base + _opened(cursor) if cursor else ""
        try:
            found, more = self.store.list_objects(base + prefix, after, None, limit)
        except StoreError as exc:
            raise ProtocolError(502, exc.answer_code, str(exc)) from None
        named = [(key[len(base) :], info) for key, info in found if _readable(key[len(base) :])]
        if details:
            heads = self._pool.map(lambda pair: self._head(base + pair[0], pair[1]), named, _kept)
            named = [(name, info) for (name, _), info in zip(named, heads, strict=True)]
        files = [_stored(name, info) for name, info in named]
        last = found[-1][0][len(base) :] if found else None
        return FilesPage(files, _sealed(last) if more and last is not None else None)

    def downloads(self, run_id: str, request: DownloadsRequest) -> DownloadsResponse:
        """Per file, in order: a signed GET and what is stored, or ``not_found``, or why the
        name is refused. Asks the store (a HEAD each, on the store pool), unless the
        request says ``lookup: false``: then GETs only, whose answers carry the checksum."""
        rules.check_run(run_id)
        rules.check_count(len(request.files), self.settings.max_files_per_request)
        if not request.lookup:
            return DownloadsResponse(
                [self._unlooked(run_id, item.file_name) for item in request.files]
            )
        return DownloadsResponse(
            self._pool.map(
                lambda item: self._download(run_id, item.file_name),
                list(request.files),
                lambda item, code, message: _refused(item.file_name, code, message),
            )
        )

    def link(self, run_id: str, name: str) -> str:
        """A fresh pre-signed GET of one file (a stable link's redirect): 404 ``not_found``
        when there is no such file, 422 for a name the key policy refuses."""
        try:
            key = object_key(self.settings.key_prefix, run_id, name)
        except PolicyError as exc:
            raise ProtocolError(422, exc.code, exc.message) from None
        try:
            info = self.store.head(key)
        except StoreError as exc:
            raise ProtocolError(503 if exc.transient else 502, exc.answer_code, str(exc)) from None
        if info is None:
            raise ProtocolError(404, "not_found", "no file of this run has that name")
        return self._signed_get(key).url

    def _signed_get(self, key: str, with_checksum: bool = False) -> SignedUpload:
        """A pre-signed GET; ``with_checksum``: bound to ``x-amz-checksum-mode: ENABLED``,
        so that the answer carries the stored checksum (S3 names none without it)."""
        headers = (("x-amz-checksum-mode", "ENABLED"),) if with_checksum else ()
        request = SignRequest(
            self.store.bucket, key, method="GET", expires=self.settings.expires, headers=headers
        )
        signed = self.presigner().sign(request)
        return SignedUpload("GET", signed.url, dict(signed.headers), iso_utc(signed.expires_at))

    def _unlooked(self, run_id: str, name: str) -> DownloadResult:
        try:
            key = object_key(self.settings.key_prefix, run_id, name)
        except PolicyError as exc:
            return _refused(name, exc.code, exc.message)
        return DownloadResult(name, "ready", key, download=self._signed_get(key, True))

    def _download(self, run_id: str, name: str) -> DownloadResult:
        try:
            key = object_key(self.settings.key_prefix, run_id, name)
        except PolicyError as exc:
            return _refused(name, exc.code, exc.message)
        try:
            info = self.store.head(key)
        except StoreError as exc:
            return _refused(name, exc.answer_code, str(exc))
        if info is None:
            return DownloadResult(name, "not_found", key, error=ErrorInfo("not_found", "no file"))
        return DownloadResult(
            name,
            "ready",
            key,
            download=self._signed_get(key),
            size=info.size,
            etag=info.etag,
            sha256=info.checksum,
            checksum_type=info.checksum_type,
            content_type=info.content_type,
        )

    def _head(self, key: str, listed: ObjectInfo) -> ObjectInfo:
        return self.store.head(key) or listed


def _readable(name: str) -> bool:
    """A name the key policy would give a file (others under the run are not files of it)."""
    try:
        check_file_name(name)
    except PolicyError:
        return False
    return True


def _stored(name: str, info: ObjectInfo) -> StoredFile:
    return StoredFile(
        name,
        info.size,
        info.etag,
        info.last_modified,
        info.content_type,
        info.checksum,
        info.checksum_type,
    )


def _kept(pair: tuple[str, ObjectInfo], code: str, message: str) -> ObjectInfo:
    return pair[1]  # the store could not say more: what the listing said


def _refused(name: str, code: str, message: str) -> DownloadResult:
    return DownloadResult(name, "rejected", error=ErrorInfo(code, message))


def _sealed(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _opened(cursor: str) -> str:
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ProtocolError(422, "invalid_cursor", "not a cursor this server gave") from None
    if not _readable(name):
        raise ProtocolError(422, "invalid_cursor", "not a cursor this server gave")
    return name
