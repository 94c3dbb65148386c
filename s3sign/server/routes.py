"""The routes of protocol v1: uploads (create, parts), their verification (complete,
status, abort), and the service's own (info, health, readiness, metrics). Each router is
built around one ``UploadSigner``; ``create_app`` mounts them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from s3sign.config import Settings
from s3sign.keys import RESERVED_RUN_ID, run_prefix
from s3sign.protocol import (
    MAX_PARTS_PER_REQUEST,
    PROTOCOL_VERSION,
    AbortRequest,
    AbortResponse,
    CompleteRequest,
    CompleteResponse,
    CreateUploadsRequest,
    CreateUploadsResponse,
    DownloadsRequest,
    DownloadsResponse,
    ErrorResponse,
    ExchangeRequest,
    ExchangeResponse,
    FilesPage,
    PartsRequest,
    PartsResponse,
    RevokeRequest,
    RevokeResponse,
    SealResponse,
    ServerInfo,
    StatusRequest,
    StatusResponse,
)
from s3sign.server import observe
from s3sign.server.bodies import answer, at_least_one, body_schema, reply
from s3sign.server.limits import error
from s3sign.server.observe import Decision, Metrics, Observer
from s3sign.server.oidc import Exchanger
from s3sign.server.reader import RunReader
from s3sign.server.rules import check_run
from s3sign.server.signer import UploadSigner
from s3sign.server.tokens import token_quota
from s3sign.units import iso_utc
from s3sign.version import __version__

A = TypeVar("A")  # an answer
B = TypeVar("B")  # a request body
READY_FOR = 5.0  # seconds a /readyz answer is reused
INFO_WAIT = 5.0  # seconds /v1/info waits for the store check under way (then answers without)
Authorise = Callable[[Request, str], Awaitable[None]]
Admit = Callable[[Request], Awaitable[None]]  # a call that needs no token: its client's rate
# (request, link token, run, file): TokenError if not
LinkCheck = Callable[[Request, str, str, str], Awaitable[None]]
REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 403, 413, 415, 422, 429, 502)
}


class Cached:
    """``check()``'s answer, asked again at most every ``seconds``: ``/readyz`` needs no
    token, so that anyone polling it costs the store one request per period. Callers
    arriving during a check wait for it rather than start their own."""

    def __init__(self, check: Callable[[], bool], seconds: float) -> None:
        self._check, self._seconds = check, seconds
        self._lock = threading.Lock()
        self._answer, self._until = False, 0.0

    def __call__(self) -> bool:
        with self._lock:
            if time.monotonic() >= self._until:
                self._answer = self._check()
                self._until = time.monotonic() + self._seconds
            return self._answer


def audited(
    observer: Observer,
    request: Request,
    work: Callable[[B], A],
    decisions: Callable[[B, A], Iterable[Decision]],
) -> Callable[[B], A]:
    """``work``, with what it decided written to the audit log (on the thread it runs on)."""

    def run(body: B) -> A:
        done = work(body)
        observer.decided(request, decisions(body, done))
        return done

    return run


def upload_routes(
    signer: UploadSigner, settings: Settings, authorise: Authorise, observer: Observer
) -> APIRouter:
    """Create uploads (or sign them again) and sign parts: the calls that hand out URLs."""
    router = APIRouter()
    refusals = REFUSALS

    @router.post(
        "/v1/runs/{run_id}/uploads",
        response_model=CreateUploadsResponse,
        response_model_exclude_none=True,
        responses=refusals,
        dependencies=[Depends(authorise)],
        summary="Create uploads, or sign them again",
        openapi_extra=body_schema(CreateUploadsRequest),
    )
    async def create_uploads(run_id: str, request: Request) -> Response:
        quota = token_quota(request.state.claims)

        def work(body: CreateUploadsRequest) -> CreateUploadsResponse:
            at_least_one(body.files)
            return signer.create_uploads(run_id, body, quota)

        def waits(body: CreateUploadsRequest) -> bool:
            """On the store: a multipart upload to start, a quota's listing, a write-once
            lookup (signing alone does not wait)."""
            if quota or signer.quota or not settings.overwrite:
                return True
            return any(spec.file_size > settings.multipart_threshold for spec in body.files)

        logged = audited(observer, request, work, observe.created)
        return await answer(request, CreateUploadsRequest, logged, waits)

    @router.post(
        "/v1/runs/{run_id}/uploads/parts",
        response_model=PartsResponse,
        responses=refusals,
        dependencies=[Depends(authorise)],
        summary="Sign part URLs of a multipart upload",
        openapi_extra=body_schema(PartsRequest),
    )
    async def sign_parts(run_id: str, request: Request) -> Response:
        def work(body: PartsRequest) -> PartsResponse:
            at_least_one(body.part_numbers, "partNumbers", MAX_PARTS_PER_REQUEST)
            return signer.sign_parts(run_id, body)

        logged = audited(observer, request, work, observe.parts_signed)
        return await answer(request, PartsRequest, logged, waits=lambda _: False)

    return router


def verification_routes(
    signer: UploadSigner, authorise: Authorise, writes: Authorise, observer: Observer
) -> APIRouter:
    """Complete, status and abort: the calls that look at (or take back) what was stored;
    ``writes`` authorises those that may change it (complete, abort: not in a sealed run)."""
    router = APIRouter()
    refusals = REFUSALS

    @router.post(
        "/v1/runs/{run_id}/uploads/complete",
        response_model=CompleteResponse,
        response_model_exclude_none=True,
        responses=refusals,
        dependencies=[Depends(writes)],
        summary="Complete uploads and verify what was stored",
        openapi_extra=body_schema(CompleteRequest),
    )
    async def complete(run_id: str, request: Request) -> Response:
        def work(body: CompleteRequest) -> CompleteResponse:
            at_least_one(body.files)
            return signer.complete(run_id, body)

        return await answer(
            request, CompleteRequest, audited(observer, request, work, observe.completed)
        )

    @router.post(
        "/v1/runs/{run_id}/uploads/status",
        response_model=StatusResponse,
        response_model_exclude_none=True,
        responses=refusals,
        dependencies=[Depends(authorise)],
        summary="Compare local files with what is stored; changes nothing",
        openapi_extra=body_schema(StatusRequest),
    )
    async def status(run_id: str, request: Request) -> Response:
        def work(body: StatusRequest) -> StatusResponse:
            at_least_one(body.files)
            return signer.status(run_id, body)

        return await answer(
            request, StatusRequest, audited(observer, request, work, observe.compared)
        )

    @router.post(
        "/v1/runs/{run_id}/uploads/abort",
        response_model=AbortResponse,
        responses=refusals,
        dependencies=[Depends(writes)],
        summary="Abort a multipart upload, or take back a single PUT",
        openapi_extra=body_schema(AbortRequest),
    )
    async def abort(run_id: str, request: Request) -> Response:
        work = audited(
            observer, request, partial(signer.abort, run_id), lambda _, done: observe.aborted(done)
        )
        return await answer(request, AbortRequest, work)

    return router


def seal_routes(signer: UploadSigner, authorise: Authorise, observer: Observer) -> APIRouter:
    """Seal a run: from then on no replica signs a write for it (a token with scope seal)."""
    router = APIRouter()

    @router.post(
        "/v1/runs/{run_id}/seal",
        response_model=SealResponse,
        responses=REFUSALS,
        dependencies=[Depends(authorise)],
        summary="Close a run: no more uploads, overwrites or deletes, whatever token is shown",
    )
    async def seal(run_id: str, request: Request) -> Response:
        check_run(run_id)
        sealed_at = await run_in_threadpool(signer.seals.seal, run_id)
        observer.decided(request, [Decision("sealed")])
        return reply(SealResponse(run_id, sealed_at))

    return router


def revocation_routes(
    signer: UploadSigner,
    settings: Settings,
    operator: Callable[[Request], Awaitable[None]],
    observer: Observer,
) -> APIRouter:
    """Revoke one token on every replica (the operator's: a revoke token)."""
    router = APIRouter()
    longest = max(settings.max_token_ttl, settings.max_link_ttl)  # no token lives longer

    @router.post(
        "/v1/revocations",
        response_model=RevokeResponse,
        responses=REFUSALS,
        dependencies=[Depends(operator)],
        summary="Revoke one token (by its jti) on every replica, until it would expire",
        openapi_extra=body_schema(RevokeRequest),
    )
    async def revoke(request: Request) -> Response:
        def work(body: RevokeRequest) -> RevokeResponse:
            until = signer.revocations.revoke(body.jti, body.until, longest)
            return RevokeResponse(body.jti, iso_utc(datetime.fromtimestamp(until, UTC)))

        def decided(body: RevokeRequest, done: RevokeResponse) -> list[Decision]:
            return [Decision("revoked", about=(("revoked", done.jti),))]

        return await answer(request, RevokeRequest, audited(observer, request, work, decided))

    return router


def exchange_routes(exchanger: Exchanger, admitted: Admit, observer: Observer) -> APIRouter:
    """Trade a CI job's OIDC ID token for a run token (server/oidc.py)."""
    router = APIRouter()

    @router.post(
        "/v1/token/exchange",
        response_model=ExchangeResponse,
        responses=REFUSALS | {404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
        dependencies=[Depends(admitted)],
        summary="Trade a CI job's OIDC ID token for a run token (no stored secret)",
        openapi_extra=body_schema(ExchangeRequest),
    )
    async def exchange(request: Request) -> Response:
        def work(body: ExchangeRequest) -> ExchangeResponse:
            done, claims = exchanger.exchange(body)  # the issuer's keys: maybe a fetch
            request.state.claims = {"sub": done.run_id, "ci": claims.get("sub")}
            return done

        def decided(_: ExchangeRequest, done: ExchangeResponse) -> list[Decision]:
            about = (("run", done.run_id), ("scopes", " ".join(done.scopes)))
            return [Decision("exchanged", about=about)]

        return await answer(request, ExchangeRequest, audited(observer, request, work, decided))

    return router


def read_routes(
    reader: RunReader, authorise: Authorise, link: LinkCheck, observer: Observer
) -> APIRouter:
    """List a run's files, sign downloads of them, and follow stable links: the calls a
    read token allows (a link token, one file)."""
    router = APIRouter()

    @router.get(
        "/v1/runs/{run_id}/files/{file_name:path}",
        status_code=307,
        responses={**REFUSALS, 404: {"model": ErrorResponse}},
        summary="A stable link: a redirect to a fresh signed GET of one file",
    )
    async def stable_link(
        run_id: str, file_name: str, request: Request, token: str | None = None
    ) -> Response:
        if token is not None:  # a link token in the query: this one file only
            await link(request, token, run_id, file_name)
        else:
            await authorise(request, run_id)
        url = await run_in_threadpool(reader.link, run_id, file_name)  # waits on the store
        redirected = Decision("redirected", file=file_name, signed=1, signed_kind="get")
        observer.decided(request, [redirected])
        headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return RedirectResponse(url, status_code=307, headers=headers)

    @router.get(
        "/v1/runs/{run_id}/files",
        response_model=FilesPage,
        response_model_exclude_none=True,
        responses=REFUSALS,
        dependencies=[Depends(authorise)],
        summary="A page of a run's files, in name order",
    )
    async def files(
        run_id: str,
        request: Request,
        prefix: str = "",
        cursor: str | None = None,
        limit: int | None = None,
        details: bool = False,
    ) -> Response:
        listed = await run_in_threadpool(
            partial(reader.files, run_id, prefix, cursor, limit, details)  # waits on the store
        )
        observer.decided(request, [Decision("listed", size=len(listed.files))])
        return reply(listed)

    @router.post(
        "/v1/runs/{run_id}/downloads",
        response_model=DownloadsResponse,
        response_model_exclude_none=True,
        responses=REFUSALS,
        dependencies=[Depends(authorise)],
        summary="Signed GETs for files of a run, with what is stored",
        openapi_extra=body_schema(DownloadsRequest),
    )
    async def downloads(run_id: str, request: Request) -> Response:
        def work(body: DownloadsRequest) -> DownloadsResponse:
            at_least_one(body.files)
            return reader.downloads(run_id, body)

        def decided(_: DownloadsRequest, done: DownloadsResponse) -> Iterator[Decision]:
            return observe.downloaded(done)

        return await answer(request, DownloadsRequest, audited(observer, request, work, decided))

    return router


def service_routes(signer: UploadSigner, settings: Settings, metrics: Metrics) -> APIRouter:
    """Info for planning, health, readiness and metrics: no token needed."""
    router = APIRouter()

    @router.get(
        "/v1/info",
        response_model=ServerInfo,
        response_model_exclude_none=True,
        summary="Key prefix, limits and what the store enforces, for planning",
    )
    async def info() -> Response:
        checks = signer.store_checks()
        if checks is None:  # a check under way (just started): worth a short wait
            checks = await run_in_threadpool(signer.store_checks, INFO_WAIT)
        return reply(
            ServerInfo(
                protocol=PROTOCOL_VERSION,
                key_prefix=settings.key_prefix,
                max_file_size=settings.max_file_size,
                max_files_per_request=settings.max_files_per_request,
                multipart_threshold=settings.multipart_threshold,
                part_size=settings.part_size,
                store=checks,
                overwrite=settings.overwrite,
                max_run_bytes=settings.max_run_bytes,
                max_run_files=settings.max_run_files,
            )
        )

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    ready = Cached(
        lambda: signer.store.reachable(run_prefix(settings.key_prefix, RESERVED_RUN_ID) + "readyz"),
        READY_FOR,
    )

    probing = ThreadPoolExecutor(1, thread_name_prefix="s3sign-readyz")

    @router.get("/readyz", summary="The bucket is reachable with the server's credentials")
    async def readyz() -> JSONResponse:
        # A thread of its own: under load the shared pool may be busy for a while, and a
        # load balancer must not take a busy replica for a dead one.
        if await asyncio.get_running_loop().run_in_executor(probing, ready):
            return JSONResponse({"status": "ready"})
        return error(503, "store_unreachable", "the bucket cannot be reached")

    @router.get("/metrics", summary="Metrics of every worker process, Prometheus text format")
    async def metrics_text() -> Response:
        text = await run_in_threadpool(metrics.exposition)  # reads the workers' files
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return router
