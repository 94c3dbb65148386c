"""A hostile HTTP peer on 127.0.0.1: it reads each request, then answers it badly.

One mode per answer that once hung a push or blew up its memory:

- ``chunked-forever``: ``200`` with a chunked body that never ends;
- ``huge-length``: ``Content-Length: 100000000000``, then bytes forever;
- ``to-close-flood``: no length at all, bytes until the client gives up;
- ``continue-flood``: ``100 Continue`` every 10 ms, never a real answer;
- ``dribble``: a well-formed answer, one byte every 0.25 s: never a stall, so only a
  deadline on the whole answer ends it;
- ``endless-chunk-line``: a chunk-size line of hex digits that never ends;
- ``negative-length``: ``Content-Length: -1``;
- ``header-flood``: header lines that never end.

Used as the S3 endpoint (as the worker's ``http_proxy``: the PUTs come here) and as
the backend. Each connection's thread stops when the client closes it or the
server is stopped.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable
from types import TracebackType

MODES = (
    "chunked-forever",
    "huge-length",
    "to-close-flood",
    "continue-flood",
    "dribble",
    "endless-chunk-line",
    "negative-length",
    "header-flood",
)
_BLOCK = b"x" * 65536
_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def _answers(mode: str) -> Callable[[socket.socket, threading.Event], None]:
    def forever(sock: socket.socket, stop: threading.Event, head: bytes, block: bytes) -> None:
        sock.sendall(head)
        while not stop.is_set():
            sock.sendall(block)

    def answer(sock: socket.socket, stop: threading.Event) -> None:
        if mode == "chunked-forever":
            chunk = b"10000\r\n" + _BLOCK + b"\r\n"
            forever(sock, stop, _CHUNKED, chunk)
        elif mode == "huge-length":
            forever(sock, stop, b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n", _BLOCK)
        elif mode == "to-close-flood":
            forever(sock, stop, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", _BLOCK)
        elif mode == "continue-flood":
            while not stop.is_set():
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                time.sleep(0.01)
        elif mode == "dribble":
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
                if stop.wait(0.25):
                    return
                sock.sendall(bytes([byte]))
        elif mode == "endless-chunk-line":
            forever(
                sock, stop, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"f" * 4096
            )
        elif mode == "negative-length":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}")
            stop.wait(30)
        elif mode == "header-flood":
            forever(sock, stop, b"HTTP/1.1 200 OK\r\n", b"X-Flood: 1\r\n" * 1000)
        else:
            raise ValueError(mode)

    return answer


class HostilePeer:
    """``with HostilePeer(mode) as peer:`` then ``peer.url``; ``peer.requests`` counts."""

    def __init__(self, mode: str) -> None:
        answer = _answers(mode)
        stop = self._stop = threading.Event()
        self.requests = 0
        peer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(30)
                try:
                    _read_request(sock)
                    peer.requests += 1
                    answer(sock, stop)
                except OSError:
                    pass  # the client gave up: what it should do

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HostilePeer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


def _read_request(sock: socket.socket) -> None:
    """The request's head and its Content-Length body (discarded)."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(65536)
        if not block:
            raise ConnectionResetError
        data += block
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    left = length - len(rest)
    while left > 0:
        block = sock.recv(min(left, 1 << 20))
        if not block:
            raise ConnectionResetError
        left -= len(block)
