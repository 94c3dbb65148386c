"""``create_app(settings)``: protocol v1 over HTTP (FastAPI), around ``UploadSigner``.

Every call but the health checks needs ``Authorization: Bearer <token>`` for
the run in its path. Every error is ``{"error": {"code", "message"}}``. A body
over 1 MiB is refused with 413 before it is read. The process keeps no state
between requests: run as many replicas as you like behind a load balancer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from s3sign import __version__
from s3sign.config import Settings, load_settings
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
    ErrorResponse,
    PartsRequest,
    PartsResponse,
    ProtocolError,
    ServerInfo,
    StatusRequest,
    StatusResponse,
)
from s3sign.server.handles import UploadHandles
from s3sign.server.limits import MAX_BODY_BYTES, TIMEOUT_STATE, RequestLimits, error
from s3sign.server.signer import UploadSigner
from s3sign.server.tokens import checked_secret, server_secret, verify_token

READY_FOR = 5.0  # seconds a /readyz answer is reused
INFO_WAIT = 5.0  # seconds /v1/info waits for the store check under way (then answers without)
log = logging.getLogger("s3sign.server")


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}
Body = TypeVar("Body")


def _adapter(kind: type[Body]) -> TypeAdapter[Body]:
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


def reply(document: Any) -> Response:
    """A wire type as the JSON answer: camelCase, without fields that are None."""
    body = _adapter(type(document)).dump_json(document, by_alias=True, exclude_none=True)
    return Response(body, media_type="application/json")


def parse(data: bytes, kind: type[Body]) -> Body:
    """The request body as ``kind``, validated from the JSON text (strict types).

    Read here rather than by FastAPI: FastAPI validates parsed Python objects,
    where pydantic's strict mode refuses a dict for a dataclass.
    """
    try:
        return _adapter(kind).validate_json(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


# CPU work (parsing, signing, writing answers): off the event loop, where a batch of
# 1,000 files (~20 ms) would hold every other request, /healthz too; and in few threads,
# one per core, so that the loop waits for Python's lock behind no more than these.
_cpu = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="s3sign-cpu")
SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005


def share_the_interpreter() -> None:
    """Make a thread that waits for Python's lock get it sooner (the process-wide switch
    interval, 1 ms instead of 5): the event loop takes the lock back after every socket
    call, and with the CPU threads busy each of those waits waited up to 5 ms, so a
    /healthz under 200 batches of 1,000 files took 0.26 s (p50); at 1 ms, 7 ms, with the
    same throughput (bench/serve_bench.py). For ``s3sign serve``'s processes only."""
    sys.setswitchinterval(SWITCH_INTERVAL)


INLINE_BODY = 8 * 1024  # bytes: a request this small (~150 files) costs the loop ~2 ms


async def answer(
    request: Request,
    kind: type[Body],
    work: Callable[[Body], Any],
    waits: Callable[[Body], bool] = lambda _: True,
) -> Response:
    """Read the body on the event loop; parse it and do ``work`` on a CPU thread (on the
    loop itself for a small body, where that costs less than the hand-over to a thread
    and back), unless ``waits(body)``: work that waits on the store goes to the shared
    thread pool, which may hold many such calls at once."""
    data = await request.body()

    def cpu_part() -> tuple[Body, Response | None]:
        body = parse(data, kind)
        return body, None if waits(body) else reply(work(body))

    if len(data) <= INLINE_BODY:
        body, response = cpu_part()
    else:
        body, response = await asyncio.get_running_loop().run_in_executor(_cpu, cpu_part)
    if response is None:
        response = await run_in_threadpool(lambda: reply(work(body)))
    return response


def body_schema(kind: type) -> dict[str, Any]:
    """``openapi_extra`` naming ``kind`` as the request body (see ``_document_request_bodies``)."""
    reference = {"$ref": f"#/components/schemas/{kind.__name__}"}
    content = {"application/json": {"schema": reference}}
    return {"requestBody": {"required": True, "content": content}}


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


class Counters:
    """Requests and request-body bytes this process received (``/metrics``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.body_bytes = 0

    def add(self, requests: int = 0, body_bytes: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.body_bytes += body_bytes


def _at_least_one(items: list[Any], name: str = "files", most: int | None = None) -> None:
    if not items or (most is not None and len(items) > most):
        limit = f"1 to {most}" if most is not None else "at least 1"
        raise ProtocolError(422, "invalid_request", f"{name}: give {limit} item(s)")


def create_app(
    settings: Settings,
    *,
    secret: bytes | None = None,
    signer: UploadSigner | None = None,
) -> FastAPI:
    """The backend as an ASGI app. ``secret`` defaults to ``S3SIGN_SERVER_SECRET``."""
    secret = checked_secret(secret) if secret is not None else server_secret(settings.server_secret)
    signer = signer or UploadSigner(settings)
    if signer.handles is None:  # upload ids go out sealed to their key (server/handles.py)
        signer.handles = UploadHandles(secret)
    counters = Counters()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, float]]:
        # Once the server's logging is set up: what the store enforces is found out in the
        # background, logged, then given in /v1/info.
        signer.store_checks()
        yield {TIMEOUT_STATE: settings.request_timeout}  # for BoundedH11Protocol

    app = FastAPI(
        title="s3sign backend",
        version=__version__,
        summary="Pre-signed S3 upload URLs for build workers: protocol v1.",
        strict_content_type=False,  # a body sent without Content-Type is read as JSON
        lifespan=lifespan,
    )
    app.add_middleware(
        RequestLimits, limit=MAX_BODY_BYTES, timeout=settings.request_timeout, counters=counters
    )
    app.state.counters = counters

    async def authorise(request: Request, run_id: str) -> None:
        """A dependency: FastAPI runs it before reading the body, so a caller
        without a valid token learns nothing about what the body should be."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        verify_token(bearer, secret, run_id, settings.max_token_ttl)

    _handle_errors(app)

    refusals: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse} for status in (400, 401, 403, 413, 415, 422, 502)
    }

    @app.post(
        "/v1/runs/{run_id}/uploads",
        response_model=CreateUploadsResponse,
        response_model_exclude_none=True,
        responses=refusals,
        dependencies=[Depends(authorise)],
        summary="Create uploads, or sign them again",
        openapi_extra=body_schema(CreateUploadsRequest),
    )
    async def create_uploads(run_id: str, request: Request) -> Response:
        def work(body: CreateUploadsRequest) -> CreateUploadsResponse:
            _at_least_one(body.files)
            return signer.create_uploads(run_id, body)

        def starts_multipart(body: CreateUploadsRequest) -> bool:
            return any(spec.file_size > settings.multipart_threshold for spec in body.files)

        return await answer(request, CreateUploadsRequest, work, starts_multipart)

    @app.post(
        "/v1/runs/{run_id}/uploads/parts",
        response_model=PartsResponse,
        responses=refusals,
        dependencies=[Depends(authorise)],
        summary="Sign part URLs of a multipart upload",
        openapi_extra=body_schema(PartsRequest),
    )
    async def sign_parts(run_id: str, request: Request) -> Response:
        def work(body: PartsRequest) -> PartsResponse:
            _at_least_one(body.part_numbers, "partNumbers", MAX_PARTS_PER_REQUEST)
            return signer.sign_parts(run_id, body)

        return await answer(request, PartsRequest, work, waits=lambda _: False)

    @app.post(
        "/v1/runs/{run_id}/uploads/complete",
        response_model=CompleteResponse,
        response_model_exclude_none=True,
        responses=refusals,
        dependencies=[Depends(authorise)],
        summary="Complete uploads and verify what was stored",
        openapi_extra=body_schema(CompleteRequest),
    )
    async def complete(run_id: str, request: Request) -> Response:
        def work(body: CompleteRequest) -> CompleteResponse:
            _at_least_one(body.files)
            return signer.complete(run_id, body)

        return await answer(request, CompleteRequest, work)

    @app.post(
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
            _at_least_one(body.files)
            return signer.status(run_id, body)

        return await answer(request, StatusRequest, work)

    @app.post(
        "/v1/runs/{run_id}/uploads/abort",
        response_model=AbortResponse,
        responses=refusals,
        dependencies=[Depends(authorise)],
        summary="Abort a multipart upload, or take back a single PUT",
        openapi_extra=body_schema(AbortRequest),
    )
    async def abort(run_id: str, request: Request) -> Response:
        return await answer(request, AbortRequest, partial(signer.abort, run_id))

    @app.get(
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
            )
        )

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    ready = Cached(
        lambda: signer.store.reachable(run_prefix(settings.key_prefix, RESERVED_RUN_ID) + "readyz"),
        READY_FOR,
    )

    probing = ThreadPoolExecutor(1, thread_name_prefix="s3sign-readyz")

    @app.get("/readyz", summary="The bucket is reachable with the server's credentials")
    async def readyz() -> JSONResponse:
        # A thread of its own: under load the shared pool may be busy for a while, and a
        # load balancer must not take a busy replica for a dead one.
        if await asyncio.get_running_loop().run_in_executor(probing, ready):
            return JSONResponse({"status": "ready"})
        return error(503, "store_unreachable", "the bucket cannot be reached")

    @app.get("/metrics", summary="Counters of this process, Prometheus text format")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            "# TYPE s3sign_requests_total counter\n"
            f"s3sign_requests_total {counters.requests}\n"
            "# TYPE s3sign_request_body_bytes_total counter\n"
            f"s3sign_request_body_bytes_total {counters.body_bytes}\n"
        )

    _document_request_bodies(
        app, (CreateUploadsRequest, PartsRequest, CompleteRequest, StatusRequest, AbortRequest)
    )
    return app


def _handle_errors(app: FastAPI) -> None:
    """Every refusal as ``{"error": {"code", "message"}}``, with the right status."""

    @app.exception_handler(ProtocolError)
    async def protocol_error(_: Request, exc: ProtocolError) -> JSONResponse:
        response = error(exc.status, exc.code, exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="s3sign"'
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type:
            return error(415, "unsupported_media_type", "send JSON: Content-Type: application/json")
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return error(400, "invalid_json", "the request body is not valid JSON")
        first = problems[0] if problems else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return error(422, "invalid_request", f"{where or 'body'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return error(500, "internal_error", "the server failed; see its log")


def _document_request_bodies(app: FastAPI, kinds: tuple[type, ...]) -> None:
    """Put the request bodies read by ``read_body`` into ``/openapi.json``'s schemas."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for kind in kinds:
                schema = _adapter(kind).json_schema(
                    by_alias=True, ref_template="#/components/schemas/{model}"
                )
                schemas.update(schema.pop("$defs", {}))
                schemas[kind.__name__] = schema
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


class StripQueryString(logging.Filter):
    """Access-log lines show the path only: a query string may carry a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def log_config(quiet: bool = False) -> dict[str, Any]:
    """uvicorn's logging, on stderr (stdout is for results), query strings stripped; the
    server's own lines (``s3sign.server``) beside uvicorn's, warnings only when ``quiet``."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"strip_query": {"()": StripQueryString}}
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["handlers"]["access"]["filters"] = ["strip_query"]
    level = "WARNING" if quiet else "INFO"
    config["loggers"]["s3sign"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config


def app_from_environment() -> FastAPI:
    """The app for ``uvicorn --factory``: settings from ``S3SIGN_*`` and the config file."""
    share_the_interpreter()
    return create_app(load_settings())
