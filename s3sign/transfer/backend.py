"""The backend client: protocol v1 calls with the run's bearer token, retried.

Connection errors, timeouts, 429 and 5xx are retried with exponential backoff
and jitter; a 429 with ``Retry-After`` is waited out as told (up to 10 minutes a call,
not counted as an attempt); 401/403 are a credentials error (exit 4); a backend still
unreachable after the retries is exit 5. The token is sent in the
Authorization header only and never logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from s3sign.codec import WireError, from_wire, to_wire
from s3sign.errors import BackendError, CredentialsError, UnreachableError
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.http.wire import Response as HTTPResponse
from s3sign.http.wire import network_problem
from s3sign.protocol import (
    AbortRequest,
    AbortResponse,
    CompleteFile,
    CompleteRequest,
    CompleteResponse,
    CreateUploadsRequest,
    CreateUploadsResponse,
    DownloadFile,
    DownloadsRequest,
    DownloadsResponse,
    ErrorResponse,
    ExchangeRequest,
    ExchangeResponse,
    FilesPage,
    FileSpec,
    PartsRequest,
    PartsResponse,
    RevokeRequest,
    RevokeResponse,
    SealResponse,
    ServerInfo,
    StatusFile,
    StatusRequest,
    StatusResponse,
)
from s3sign.retry import RETRY_STATUSES, backoff
from s3sign.units import http_date

# More attempts once the backend has answered: a backend that goes away mid-push is most
# likely being restarted or redeployed. 5 attempts wait 4-8 s in all; 8 wait 26-52 s.
RESTART_ATTEMPTS = 3
MOST_TOLD_TO_WAIT = 600.0  # seconds of Retry-After one call waits out (rate limits)
READ_TIMEOUT = 120.0
# A backend's answer: 1,000 signed URLs with session tokens are ~3 MiB; more is not protocol v1.
MAX_ANSWER = 32 * 1024 * 1024
Response = TypeVar("Response")


class BackendClient:
    """Protocol v1 for one backend URL and one run token.

    Shared by the push's threads: the keep-alive connections are, and nothing
    here changes between calls. TLS and proxies follow ``transport`` (by default
    this process's environment: see :mod:`s3sign.http.transport`).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        read_timeout: float = READ_TIMEOUT,
        transport: Transport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self._sleep = sleep
        # ``transport``: the network rules (``Settings.transport``); direct when not given
        self._http = Connections(transport or Transport(), "backend", read_timeout, MAX_ANSWER)
        self._headers = {"User-Agent": "s3sign"}
        if token:  # none: only for the calls that need none (info, the OIDC exchange)
            self._headers["Authorization"] = f"Bearer {token}"
        self._reached = False  # once it answered, an outage is a restart: wait longer
        # The backend's clock minus this machine's, from its Date header; zero when they
        # agree within 2 s (the header has whole seconds). A URL's expiresAt is on the
        # backend's clock: a worker whose clock is off must not take good URLs for expired.
        self.clock_offset = timedelta(0)

    def close(self) -> None:
        self._http.close()

    def info(self) -> ServerInfo:
        """The backend's key prefix and limits."""
        return self._call("GET", "/v1/info", None, ServerInfo)

    def create_uploads(self, run_id: str, files: Sequence[FileSpec]) -> CreateUploadsResponse:
        body = CreateUploadsRequest(files=list(files))
        return self._call("POST", f"/v1/runs/{run_id}/uploads", body, CreateUploadsResponse)

    def sign_parts(
        self,
        run_id: str,
        key: str,
        upload_id: str,
        file_size: int,
        part_numbers: Sequence[int],
        *,
        sha256: list[str] | None = None,
        md5: list[str] | None = None,
    ) -> PartsResponse:
        """Part URLs; with ``sha256`` or ``md5`` (one per part), each bound to its digest."""
        body = PartsRequest(
            key=key,
            upload_id=upload_id,
            file_size=file_size,
            part_numbers=list(part_numbers),
            sha256=sha256,
            md5=md5,
        )
        return self._call("POST", f"/v1/runs/{run_id}/uploads/parts", body, PartsResponse)

    def complete(self, run_id: str, files: Sequence[CompleteFile]) -> CompleteResponse:
        body = CompleteRequest(files=list(files))
        return self._call("POST", f"/v1/runs/{run_id}/uploads/complete", body, CompleteResponse)

    def status(self, run_id: str, files: Sequence[StatusFile]) -> StatusResponse:
        """Which files are stored, and the same: asks the store, changes nothing."""
        body = StatusRequest(files=list(files))
        return self._call("POST", f"/v1/runs/{run_id}/uploads/status", body, StatusResponse)

    def abort(
        self, run_id: str, key: str, upload_id: str | None = None, etag: str | None = None
    ) -> AbortResponse:
        """Abandon a multipart upload (``upload_id``), or take back the single PUT that got
        ``etag`` (``kept``: the object under the key is no longer that upload)."""
        body = AbortRequest(key=key, upload_id=upload_id, etag=etag)
        return self._call("POST", f"/v1/runs/{run_id}/uploads/abort", body, AbortResponse)

    def seal(self, run_id: str) -> SealResponse:
        """Close the run (a seal token): no more writes, whatever token is shown."""
        return self._call("POST", f"/v1/runs/{run_id}/seal", None, SealResponse)

    def revoke(self, jti: str, until: int | None = None) -> RevokeResponse:
        """Cut off one token on every replica (a revoke token, minted with the secret)."""
        return self._call("POST", "/v1/revocations", RevokeRequest(jti, until), RevokeResponse)

    def exchange(
        self, id_token: str, run_id: str, scopes: Sequence[str] | None = None
    ) -> ExchangeResponse:
        """A run token for a CI job's OIDC ID token (no token of its own needed)."""
        body = ExchangeRequest(id_token, run_id, list(scopes) if scopes else None)
        return self._call("POST", "/v1/token/exchange", body, ExchangeResponse)

    def files(
        self,
        run_id: str,
        prefix: str = "",
        cursor: str | None = None,
        details: bool = False,
        limit: int | None = None,
    ) -> FilesPage:
        """One page of the run's files (a read token); ``limit``: at most so many (the
        server's page by default)."""
        query = {"prefix": prefix} | ({"cursor": cursor} if cursor else {})
        query |= {"details": "true"} if details else {}
        query |= {"limit": str(limit)} if limit else {}
        path = f"/v1/runs/{run_id}/files?{urlencode(query, quote_via=quote)}"
        return self._call("GET", path, None, FilesPage)

    def downloads(
        self, run_id: str, names: Sequence[str], lookup: bool = True
    ) -> DownloadsResponse:
        """Signed GETs for ``names`` of the run, with what is stored (a read token);
        without ``lookup``, URLs only (see ``DownloadsRequest``)."""
        body = DownloadsRequest([DownloadFile(name) for name in names], lookup)
        return self._call("POST", f"/v1/runs/{run_id}/downloads", body, DownloadsResponse)

    def _call(
        self,
        method: str,
        path: str,
        body: Any,
        response_type: type[Response] | None,
    ) -> Response:
        url = self.base_url + path
        data = json.dumps(to_wire(body)).encode() if body is not None else b""
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        problem = ""
        attempts = self.attempts + (RESTART_ATTEMPTS if self._reached else 0)
        attempt, told_to_wait = 0, 0.0
        while attempt < attempts:
            attempt += 1
            if attempt > 1:
                self._sleep(backoff(attempt - 1))
            try:
                response = self._http.request(method, url, headers, data)
            except OSError as exc:
                problem = f"cannot reach {self.base_url}: {network_problem(exc)}"
                continue
            wait = _retry_after(response) if response.status == 429 else None
            if wait is not None and told_to_wait + wait <= MOST_TOLD_TO_WAIT:
                told_to_wait += wait  # waited as told: not a failed attempt
                self._sleep(wait)
                attempt -= 1
                continue
            if response.status in RETRY_STATUSES:
                problem = f"the backend answered {response.status} {_message(response)}"
                continue
            self._reached = True
            if (date := http_date(response.headers.get("date", ""))) is not None:
                offset = date - datetime.now(UTC)
                self.clock_offset = offset if abs(offset) >= timedelta(seconds=2) else timedelta(0)
            return _parse(response, response_type)
        raise UnreachableError(
            f"{problem} ({attempts} attempts)",
            hint="check --backend / S3SIGN_BACKEND and that the backend is running",
        )


def _retry_after(response: HTTPResponse) -> float | None:
    """The seconds a 429's ``Retry-After`` asks for (whole seconds, at most a minute), or
    None when it names none (then the usual backoff)."""
    value = response.headers.get("retry-after", "").strip()
    if not value.isdigit() or len(value) > 6:
        return None
    return float(min(int(value), 60))


def _parse(response: HTTPResponse, response_type: type[Response] | None) -> Response:
    if response.status in (401, 403):
        message = _message(response)
        hint = "mint a token for this run with 's3sign token RUN_ID' and pass --token or " + (
            "S3SIGN_TOKEN"
        )
        if message.startswith("run_sealed"):
            hint = "the run was sealed ('s3sign seal'): push into a new run"
        elif message.startswith("wrong_scope"):
            hint = (
                "the token is for the other half: 's3sign token RUN_ID --scope read' mints one "
                "that reads, the default one that uploads (--scope upload,read: both)"
            )
        raise CredentialsError(f"the backend refused the token: {message}", hint=hint)
    if response.status >= 400:
        raise BackendError(f"the backend refused the request: {_message(response)}")
    if response_type is None:
        return None  # type: ignore[return-value]  # the caller asked for no body
    try:
        return from_wire(response_type, json.loads(response.data))
    except (WireError, ValueError):
        raise BackendError(
            "the backend's answer is not protocol v1",
            hint="check that --backend points at an s3sign backend",
        ) from None


def _message(response: HTTPResponse) -> str:
    """``code: message`` from a protocol error body, else the status line."""
    try:
        error = from_wire(ErrorResponse, json.loads(response.data)).error
    except ValueError:  # not JSON, or not a protocol error (WireError)
        return f"(HTTP {response.status})"
    return f"{error.code}: {error.message}"
