"""``create_app(settings)``: protocol v1 over HTTP (FastAPI), around ``UploadSigner``.

Every call but the health checks needs ``Authorization: Bearer <token>`` for
the run in its path. Every error is ``{"error": {"code", "message"}}``. A body
over 1 MiB is refused with 413 before it is read. The process keeps no state
between requests: run as many replicas as you like behind a load balancer.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from s3sign.config import Settings, load_settings
from s3sign.protocol import (
    AbortRequest,
    CompleteRequest,
    CreateUploadsRequest,
    DownloadsRequest,
    ExchangeRequest,
    PartsRequest,
    ProtocolError,
    RevokeRequest,
    StatusRequest,
)
from s3sign.server.bodies import adapter
from s3sign.server.gate import Gate
from s3sign.server.handles import UploadHandles
from s3sign.server.limits import MAX_BODY_BYTES, TIMEOUT_STATE, RequestLimits, error
from s3sign.server.observe import Decision, Metrics, Observer, audit_stream
from s3sign.server.oidc import Exchanger, oidc_rules
from s3sign.server.rates import RateLimited
from s3sign.server.routes import (
    exchange_routes,
    read_routes,
    revocation_routes,
    seal_routes,
    service_routes,
    upload_routes,
    verification_routes,
)
from s3sign.server.signer import UploadSigner
from s3sign.server.tokens import (
    READ,
    SEAL,
    UPLOAD,
    Keys,
    checked_secret,
    server_keys,
)
from s3sign.version import __version__

log = logging.getLogger("s3sign.server")


SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005


def share_the_interpreter() -> None:
    """Make a thread that waits for Python's lock get it sooner (the process-wide switch
    interval, 1 ms instead of 5): the event loop takes the lock back after every socket
    call, and with the CPU threads busy each of those waits waited up to 5 ms, so a
    /healthz under 200 batches of 1,000 files took 0.26 s (p50); at 1 ms, 7 ms, with the
    same throughput (bench/serve_bench.py). For ``s3sign serve``'s processes only."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def create_app(
    settings: Settings,
    *,
    secret: bytes | Keys | None = None,
    signer: UploadSigner | None = None,
    audit: TextIO | None = None,
) -> FastAPI:
    """The backend as an ASGI app. ``secret`` defaults to ``S3SIGN_SERVER_SECRETS`` or
    ``S3SIGN_SERVER_SECRET``; ``audit``: where the audit log goes (stderr)."""
    if secret is None:
        secret = server_keys(settings.server_secret, settings.server_secrets)
    elif isinstance(secret, bytes):
        secret = Keys([checked_secret(secret)])
    signer = signer or UploadSigner(settings)
    if signer.handles is None:  # upload ids go out sealed to their key (server/handles.py)
        signer.handles = UploadHandles(secret.secrets)
    metrics = Metrics()
    observer = Observer(metrics, audit or audit_stream(settings.audit_log))

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
        RequestLimits, limit=MAX_BODY_BYTES, timeout=settings.request_timeout, observer=observer
    )
    app.state.metrics = metrics

    gate = Gate(settings, secret, signer)
    _handle_errors(app, observer)
    writing = gate.authoriser(UPLOAD, writes=True)
    app.include_router(upload_routes(signer, settings, writing, observer))
    app.include_router(verification_routes(signer, gate.authoriser(UPLOAD), writing, observer))
    app.include_router(seal_routes(signer, gate.authoriser(SEAL), observer))
    app.include_router(revocation_routes(signer, settings, gate.operator, observer))
    app.include_router(read_routes(signer.reader(), gate.authoriser(READ), gate.link, observer))
    exchanger = Exchanger(
        oidc_rules(settings.oidc, settings.max_token_ttl), secret, settings.transport
    )
    app.include_router(exchange_routes(exchanger, gate.anyone, observer))
    app.include_router(service_routes(signer, settings, metrics))
    _document_request_bodies(
        app,
        (
            CreateUploadsRequest,
            PartsRequest,
            CompleteRequest,
            StatusRequest,
            AbortRequest,
            DownloadsRequest,
            RevokeRequest,
            ExchangeRequest,
        ),
    )
    return app


def _handle_errors(app: FastAPI, observer: Observer) -> None:
    """Every refusal as ``{"error": {"code", "message"}}``, with the right status; each
    refusal of a protocol call is a decision in the audit log."""

    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, exc: ProtocolError) -> JSONResponse:
        observer.decided(request, [Decision("refused", exc.code)])
        response = error(exc.status, exc.code, exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="s3sign"'
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type:
            return error(415, "unsupported_media_type", "send JSON: Content-Type: application/json")
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            observer.decided(request, [Decision("refused", "invalid_json")])
            return error(400, "invalid_json", "the request body is not valid JSON")
        first = problems[0] if problems else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        observer.decided(request, [Decision("refused", "invalid_request")])
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
                schema = adapter(kind).json_schema(
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


def log_config(quiet: bool = False, json: bool = False) -> dict[str, Any]:
    """uvicorn's logging, on stderr (stdout is for results), query strings stripped; the
    server's own lines (``s3sign.server``) beside uvicorn's, warnings only when ``quiet``;
    with ``json``, each line a JSON object (structlog's formatter)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"strip_query": {"()": StripQueryString}}
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["handlers"]["access"]["filters"] = ["strip_query"]
    level = "WARNING" if quiet else "INFO"
    config["loggers"]["s3sign"] = {"handlers": ["default"], "level": level, "propagate": False}
    if json:
        formatter = {"()": "s3sign.server.observe.json_formatter"}
        config["formatters"] = {"default": formatter, "access": formatter}
    return config


def app_from_environment() -> FastAPI:
    """The app for ``uvicorn --factory``: settings from ``S3SIGN_*`` and the config file."""
    share_the_interpreter()
    return create_app(load_settings())
