"""Keep-alive HTTP/1.1 connections: every HTTP call the project makes goes through here.

Push spends most of its CPU on HTTP requests, on machines whose cores the
store (or the CI job) also needs. This module writes each request head in one
piece and reads the (small) answer with a parser of what S3 sends (``wire.py``), over a
small pool of keep-alive sockets. Measured on 1,000 pre-signed 4 KiB PUTs:
0.14 s of CPU, against 0.20 s through ``http.client``, 0.39 s through urllib3
and 0.80 s through requests (docs/benchmarks.md, push section 4). The same
code then serves the backend calls, the server's own S3 calls, ``doctor`` and
the demo, so that one set of rules (TLS, proxies, timeouts:
:mod:`s3sign.http.transport`) and one set of limits hold for all of them.

- Bodies under 64 KiB go in the same ``send`` as the head; larger ones over
  plain ``http://`` go from the file to the socket with ``sendfile`` (no copy
  through Python), over TLS in 1 MiB reads.
- Answers: a status line, headers, then a ``Content-Length`` or chunked
  body, or a body up to the connection's close; interim 1xx answers skipped.
  ``fetch`` hands a download's body on block by block instead of keeping it.
- Whatever the peer sends, memory and time stay bounded: an answer's body
  is at most ``max_answer`` bytes (1 MiB by default: S3 answers a PUT with an
  ETag or a small error document), its head 64 KiB and 100 lines, a chunk-size
  line 4 KiB, interim answers 8; a negative or oversized ``Content-Length`` is
  a bad answer at once. The whole answer must arrive within ``read_timeout``
  seconds of the request being sent (a deadline on the monotonic clock, not a
  timeout per ``recv``, so a peer dribbling a byte at a time cannot hold a
  push), and a body must go at 256 KiB/s on average or better (plus
  ``read_timeout``): a 5 GiB part may take 5.7 hours, a 4 KiB file 2 minutes.
- Header names and values, and the request target, are refused if they hold
  a line break or control character (``ValueError``): nothing the backend
  sends can inject a header.

Nothing here retries: a failed request raises ``OSError`` and its connection
is closed; the push engine decides what to do.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from s3sign.http.transport import Peer, Proxy, Transport
from s3sign.http.wire import (
    BLOCK_SIZE,
    MAX_ANSWER,
    SMALL_BODY,
    BadResponse,
    BodyShrank,
    Connection,
    DeadlinePassed,
    Response,
    Sink,
)

if TYPE_CHECKING:  # imported when the first TLS connection is made: plain HTTP skips it
    import ssl

MIN_RATE = 256 * 1024  # bytes/s: a body sent slower than this on average misses its deadline
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")  # control characters, CR and LF among them
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")
_Origin = tuple[str, str, int]  # scheme, host, port


class Connections:
    """Idle keep-alive connections per origin, shared by threads, to one kind of peer.

    TLS, proxies and the connect timeout follow ``transport`` (see
    :mod:`s3sign.http.transport`): HTTPS through a proxy goes in a ``CONNECT`` tunnel,
    plain HTTP is forwarded with the whole URL as the request target.
    """

    def __init__(
        self,
        transport: Transport,
        peer: Peer,
        read_timeout: float,
        max_answer: int = MAX_ANSWER,
    ) -> None:
        self._connect_timeout = transport.connect_timeout
        self._read_timeout = read_timeout  # a stall, and the deadline for a whole answer
        self._max_answer = max_answer
        self._ca_bundle = transport.ca_bundle(peer)  # checked now: a missing file is exit 3
        self._proxies = transport.proxies
        self._idle: dict[_Origin, list[Connection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: BinaryIO,
        offset: int,
        length: int,
        on_sent: Callable[[int], None],
    ) -> Response:
        """Send ``length`` bytes of ``body`` from ``offset``; the whole (small) answer."""
        return self._exchange(
            method, url, headers, length, lambda c, h: _send(c, h, body, offset, length, on_sent)
        )

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        data: bytes = b"",
        timeout: float | None = None,
    ) -> Response:
        """Send ``data`` (a small body, maybe empty); the whole answer, within ``timeout``
        seconds (by default ``read_timeout``)."""

        def write(connection: Connection, head: str) -> None:
            connection.sock.sendall(_head_bytes(connection, head) + data)

        return self._exchange(method, url, headers, len(data), write, timeout=timeout)

    def fetch(
        self,
        url: str,
        headers: Mapping[str, str],
        sink: Sink,
        limit: int,
        wanted: int | None = None,
    ) -> Response:
        """``GET url``: a 2xx answer's body, at most ``limit`` bytes, goes to ``sink`` block by
        block as it arrives (memory stays flat), within ``read_timeout`` plus the time it
        takes at 256 KiB/s; any other answer comes back whole, as from ``request``. With
        ``wanted`` (206 for a range), another 2xx answer comes back without its body."""

        def write(connection: Connection, head: str) -> None:
            connection.sock.sendall(_head_bytes(connection, head))

        return self._exchange("GET", url, headers, 0, write, sink, limit, wanted=wanted)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        length: int,
        write: Callable[[Connection, str], None],
        sink: Sink | None = None,
        limit: int = 0,
        timeout: float | None = None,
        wanted: int | None = None,
    ) -> Response:
        parts = urlsplit(url)
        scheme = parts.scheme
        origin = (scheme, parts.hostname or "", parts.port or _default_port(scheme))
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        _check_request(method, target, headers)
        connection = self._take(origin)
        try:
            sending = self._read_timeout + length / MIN_RATE
            connection.start(sending, f"sending {length:,} bytes took over {sending:.0f} s")
            write(connection, _request_head(method, connection.prefix + target, headers, length))
            wait = (timeout or self._read_timeout) + limit / MIN_RATE
            connection.start(wait, f"no whole answer within {round(wait, 1):g} s of the request")
            response, keep = connection.read_response(method, sink, limit, wanted)
        except TimeoutError as exc:
            connection.close()
            if connection.shortened and not isinstance(exc, DeadlinePassed):
                raise DeadlinePassed(connection.deadline_for) from None  # cut to the deadline
            raise
        except BaseException:
            connection.close()
            raise
        if keep:
            self._give_back(origin, connection)
        else:
            connection.close()
        return response

    def _take(self, origin: _Origin) -> Connection:
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle:
                connection = idle.pop()
                if not connection.dropped():
                    return connection
                connection.close()
        return self._connect(origin)

    def _give_back(self, origin: _Origin, connection: Connection) -> None:
        with self._lock:
            self._idle.setdefault(origin, []).append(connection)

    def _connect(self, origin: _Origin) -> Connection:
        scheme, host, port = origin
        # As http.client does, and as the URL was signed: the port only when not the default.
        name = f"[{host}]" if ":" in host else host
        host_header = name if port == _default_port(scheme) else f"{name}:{port}"
        proxy = self._proxies.for_origin(scheme, host, port)
        address = (proxy.host, proxy.port) if proxy else (host, port)
        sock = socket.create_connection(address, timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy and scheme == "https":
                _tunnel(sock, f"{name}:{port}", proxy, self._read_timeout)
            if scheme == "https":
                if self._tls is None:
                    import ssl

                    self._tls = ssl.create_default_context(cafile=self._ca_bundle)
                sock = self._tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(self._read_timeout)  # from here on, a stall
        except BaseException:
            sock.close()
            raise
        connection = Connection(sock, host_header, self._read_timeout)
        connection.max_answer = self._max_answer
        if proxy and scheme == "http":  # forwarded: the whole URL is the request target
            connection.prefix = f"http://{host_header}"
            connection.extra = proxy.authorization
        return connection


def _tunnel(sock: socket.socket, authority: str, proxy: Proxy, timeout: float) -> None:
    """Ask the proxy for a tunnel to ``authority`` (``CONNECT``), for TLS end to end."""
    sock.sendall(
        f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{proxy.authorization}\r\n".encode()
    )
    answer = Connection(sock, authority, timeout)
    answer.start(timeout, f"the proxy did not answer CONNECT within {timeout:g} s")
    head = answer.read_head()
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        raise ConnectionRefusedError(f"the proxy refused the tunnel: {line}")
    if answer.pending:
        raise BadResponse("the proxy sent data before the tunnel was used")


def _check_request(method: str, target: str, headers: Mapping[str, str]) -> None:
    """``ValueError`` for what would break the request apart: no header can be injected."""
    if _UNSAFE_TARGET.search(target) or _UNSAFE.search(method):
        raise ValueError("the URL holds spaces or control characters")
    for name, value in headers.items():
        if _UNSAFE.search(name) or _UNSAFE.search(value) or ":" in name:
            raise ValueError(f"header {name!r} holds a control character or line break")


def _request_head(method: str, target: str, headers: Mapping[str, str], length: int) -> str:
    """``METHOD target HTTP/1.1`` and the headers, without Host and the final blank line.

    ``Content-Length`` is always the body's real length, whatever ``headers`` say (a
    signed length that differs is then the store's to refuse): a wrong one would split
    the body into a second request on the connection."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    lines += [
        f"{name}: {value}\r\n"
        for name, value in headers.items()
        if name.lower() != "content-length"
    ]
    lines.append(f"Content-Length: {length}\r\n")
    return "".join(lines)


def _head_bytes(connection: Connection, head: str) -> bytes:
    return f"{head}{connection.extra}Host: {connection.host}\r\n\r\n".encode("latin-1")


def _send(
    connection: Connection,
    head: str,
    body: BinaryIO,
    offset: int,
    length: int,
    on_sent: Callable[[int], None],
) -> None:
    sock = connection.sock
    start = _head_bytes(connection, head)
    if length < SMALL_BODY:  # head and body in one send
        block = os.pread(body.fileno(), length, offset)
        if len(block) < length:
            raise BodyShrank
        sock.sendall(start + block)
        on_sent(length)
        return
    sock.sendall(start)
    left = length
    if type(sock) is socket.socket:  # plain HTTP (not TLS): file to socket in the kernel
        while left:
            connection.check_deadline()
            sent = sock.sendfile(body, offset, min(BLOCK_SIZE, left))
            if not sent:
                raise BodyShrank
            offset, left = offset + sent, left - sent
            on_sent(sent)
        return
    body.seek(offset)
    while left:
        connection.check_deadline()
        block = body.read(min(BLOCK_SIZE, left))
        if not block:
            raise BodyShrank
        sock.sendall(block)
        left -= len(block)
        on_sent(len(block))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
