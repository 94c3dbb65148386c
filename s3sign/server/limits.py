"""What one client may cost the server: the size of a request, and the time to send it.

- A request's head must arrive within ``request_timeout`` seconds (20 by default)
  of the connection being opened, or of the previous answer on it: a client that
  dribbles its headers, or opens connections and sends nothing, is cut off
  (:class:`BoundedH11Protocol`, uvicorn's HTTP/1.1 protocol with that timer; uvicorn
  itself waits for a head forever).
- Its body must then arrive within ``request_timeout`` too, and be at most 1 MiB
  (:class:`RequestLimits`): 408 ``request_timeout`` or 413 ``body_too_large``.
- uvicorn answers 503 to requests beyond ``max_connections`` open connections, and
  closes a kept-alive connection after 5 s without a request.

In front of a proxy, set its own timeouts no longer than these (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from fastapi.responses import JSONResponse
from uvicorn.protocols.http.h11_impl import H11Protocol

from s3sign.codec import to_wire
from s3sign.protocol import ErrorInfo, ErrorResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1024 * 1024
KEEP_ALIVE = 5  # seconds an idle kept-alive connection stays open
TIMEOUT_STATE = "s3sign_request_timeout"  # the app's lifespan state names its timeout here


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request's head."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a whole head came: the app has it
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._wait_for_head()  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _wait_for_head(self) -> None:
        self._stop_waiting()
        seconds = float(self.app_state.get(TIMEOUT_STATE, 20))
        self._head_timer = self.loop.call_later(seconds, self._too_slow)

    def _stop_waiting(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()  # no answer: the client has not asked anything yet


def uvicorn_limits(max_connections: int) -> dict[str, Any]:
    """The uvicorn settings these limits need."""
    return {
        "http": BoundedH11Protocol,
        "limit_concurrency": max_connections,
        "timeout_keep_alive": KEEP_ALIVE,
    }


def error(status: int, code: str, message: str, close: bool = False) -> JSONResponse:
    """The protocol's error answer; with ``close``, the connection ends after it."""
    headers = {"Connection": "close"} if close else None
    content = to_wire(ErrorResponse(ErrorInfo(code, message)))
    return JSONResponse(content, status_code=status, headers=headers)


class RequestLimits:
    """ASGI middleware: 413 for a body over ``limit`` bytes (declared or streamed), 408 for
    one that does not arrive within ``timeout`` seconds; counts requests (by route and
    status, with their time) and the bytes of their bodies and of the answers' (artifacts
    never pass here: the counts show it), through ``observer``."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float, observer: Any) -> None:
        self.app, self.limit, self.timeout, self.observer = app, limit, timeout, observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send, answered = self.observer.counted(scope, send)
        try:
            await self._limited(scope, receive, send)
        finally:
            answered()

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"the request body is over {self.limit} bytes"
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await error(413, "body_too_large", too_large, close=True)(scope, receive, send)
            return
        seen = 0
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def limited() -> Message:
            nonlocal seen
            try:
                async with asyncio.timeout_at(deadline):  # no task per call, as wait_for makes
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                seen += size
                self.observer.metrics.body_bytes.inc(size)
                if seen > self.limit:
                    raise _TooLarge
            return message

        # The rest of the body is not read: the connection cannot carry another request.
        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await error(413, "body_too_large", too_large, close=True)(scope, receive, send)
        except _TooSlow:
            too_slow = f"the request body did not arrive within {self.timeout:g} s"
            await error(408, "request_timeout", too_slow, close=True)(scope, receive, send)


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass
