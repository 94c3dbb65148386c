"""A fault-injecting HTTP proxy to put in front of S3 in tests.

It forwards each request as it came (the Host header too, so signatures still
verify). A new connection may be dropped at its first request (``drop``);
any request may be cut with a TCP reset halfway through its body (``reset``),
answered with an error status without being forwarded (``unavailable``, one
of ``statuses``), or stalled first. Decisions come from a seeded random
generator; ``refuse`` answers 503 to the first requests for chosen paths, and
``corrupt`` forwards their bodies with one byte changed; ``strip`` leaves request headers
out.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from s3sign.local.seaweed import free_ports


@dataclass
class Faults:
    drop: float = 0.0  # of connections: closed at their first request, without an answer
    reset: float = 0.0  # TCP reset after reading half the body
    unavailable: float = 0.0  # answer one of ``statuses`` without forwarding
    statuses: tuple[int, ...] = (503,)
    stall: float = 0.0  # wait stall_seconds, then forward
    stall_seconds: float = 1.0
    latency: float = 0.0  # added to every request
    # part of "METHOD /path?query" -> answer 503 to that many of the requests it matches
    refuse: dict[str, int] = field(default_factory=dict)
    # the same, forwarded with the body's first byte changed (a corrupting middlebox)
    corrupt: dict[str, int] = field(default_factory=dict)
    # the same, held that many seconds before it is forwarded (a store that hangs)
    hold: dict[str, float] = field(default_factory=dict)
    # request headers left out when forwarding (a store, or a middlebox, that ignores them)
    strip: tuple[str, ...] = ()
    seed: int = 1234
    # the first requests get these faults, in order ("drop" only takes a connection's first
    # request), then chance decides: a test that asserts each kind happened is not a gamble
    opening: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"drop": 0, "reset": 0, "503": 0, "stall": 0, "ok": 0}
    )


class FaultyProxy:
    """``with FaultyProxy(upstream, Faults(...)) as proxy:`` then use ``proxy.url``."""

    def __init__(self, upstream: str, faults: Faults) -> None:
        self.faults = faults
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        target = urlsplit(upstream)
        random_source = random.Random(faults.seed)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            first_request = True

            def _roll(self) -> str:
                with lock:
                    drop, roll = random_source.random(), random_source.random()
                    for part, left in faults.refuse.items():
                        if left > 0 and part in f"{self.command} {self.path}":
                            faults.refuse[part] = left - 1
                            return "503"
                first, self.first_request = self.first_request, False
                if faults.opening and (first or faults.opening[0] != "drop"):
                    return faults.opening.pop(0)
                if first and drop < faults.drop:
                    return "drop"
                chances = {"reset": faults.reset, "503": faults.unavailable, "stall": faults.stall}
                for name, chance in chances.items():
                    if roll < chance:
                        return name
                    roll -= chance
                return "ok"

            def _wait(self) -> None:
                held = [
                    s for part, s in faults.hold.items() if part in f"{self.command} {self.path}"
                ]
                time.sleep(faults.latency + sum(held))

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fault = self._roll()
                with lock:
                    faults.counts[fault] += 1
                if fault == "reset":
                    self.rfile.read(length // 2)
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()  # with linger 0: a RST, mid-body
                    return
                body = self.rfile.read(length) if length else b""
                with lock:
                    for part, left in faults.corrupt.items():
                        if body and left > 0 and part in f"{self.command} {self.path}":
                            faults.corrupt[part] = left - 1
                            body = bytes([body[0] ^ 0xFF]) + body[1:]
                self._wait()
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault == "503":
                    with lock:
                        status = random_source.choice(faults.statuses)
                    payload = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault == "stall":
                    time.sleep(faults.stall_seconds)
                upstream_conn = http.client.HTTPConnection(target.netloc, timeout=60)
                try:
                    upstream_conn.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    stripped = {name.lower() for name in faults.strip}
                    for name, value in self.headers.items():
                        if name.lower() not in stripped:
                            upstream_conn.putheader(name, value)
                    upstream_conn.endheaders(body)
                    answer = upstream_conn.getresponse()
                    payload = answer.read()
                finally:
                    upstream_conn.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                declared = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", declared or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
