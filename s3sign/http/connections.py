"""Keep-alive HTTP/1.1 connections: every HTTP call the project makes goes through here.

Push spends most of its CPU on HTTP requests, on machines whose cores the
store (or the CI job) also needs. This module writes each request head in one
piece and reads the (small) answer with a parser of what S3 sends, over a
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
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from s3sign.http.transport import Peer, Proxy, Transport

if TYPE_CHECKING:  # imported when the first TLS connection is made: plain HTTP skips it
    import ssl

BLOCK_SIZE = 1024 * 1024
SMALL_BODY = 64 * 1024
MAX_HEAD = 64 * 1024
MAX_HEADER_LINES = 100
MAX_LINE = 4096  # a chunk-size line or a trailer
MAX_INTERIM = 8  # 1xx answers before the real one
MAX_ANSWER = 1024 * 1024  # an answer's body, by default
MIN_RATE = 256 * 1024  # bytes/s: a body sent slower than this on average misses its deadline
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")  # control characters, CR and LF among them
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")

_Origin = tuple[str, str, int]


class BodyShrank(Exception):  # not an OSError: it is not a network failure
    """The file ended before the declared length was sent."""


class BadResponse(ConnectionError):
    """The server's answer is not HTTP/1.x as expected, or is over a limit."""


class DeadlinePassed(TimeoutError):
    """The exchange took longer than its deadline (the message says which)."""


_PROBLEMS: tuple[tuple[type[OSError], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (ConnectionAbortedError, "connection aborted"),
    (BrokenPipeError, "connection closed while sending"),
    (TimeoutError, "timed out"),
    (socket.gaierror, "host name not found"),
)


def network_problem(exc: OSError) -> str:
    """A failed request's cause in a few words: "connection refused", "timed out", ..."""
    if isinstance(exc, BadResponse):
        return f"a bad answer: {exc}"
    if isinstance(exc, DeadlinePassed):
        return str(exc)
    if type(exc).__name__ == "SSLCertVerificationError":  # ssl is imported only for TLS
        return (
            "its TLS certificate is not trusted (a private CA? AWS_CA_BUNDLE for S3, "
            "REQUESTS_CA_BUNDLE for the backend)"
        )
    for kind, words in _PROBLEMS:
        if isinstance(exc, kind):
            return words
    return type(exc).__name__


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    data: bytes


class _Connection:
    """One socket, and what it received beyond the last answer."""

    def __init__(self, sock: socket.socket, host: str, timeout: float) -> None:
        self.sock = sock
        self.host = host  # the Host header: what the URL was signed for
        self.pending = b""
        self.prefix = ""  # through a forwarding proxy: "http://host[:port]" before the path
        self.extra = ""  # through a forwarding proxy: its Proxy-Authorization line
        self.timeout = timeout  # the socket's own: a stall
        self.deadline = float("inf")  # on the monotonic clock: the answer must be in by then
        self.deadline_for = ""  # what the deadline is for, to say when it passes
        self.max_answer = MAX_ANSWER
        self.shortened = False  # the socket's timeout cut to the time left

    def start(self, seconds: float, what: str) -> None:
        """A new deadline, ``seconds`` from now."""
        self.deadline, self.deadline_for = time.monotonic() + seconds, what
        if self.shortened:
            self.sock.settimeout(self.timeout)
            self.shortened = False

    def check_deadline(self) -> None:
        """``DeadlinePassed`` once the deadline is past; else the socket waits no longer
        than the time left (cheap: the timeout changes only near the end)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassed(self.deadline_for)
        if left < self.timeout:
            self.sock.settimeout(left)
            self.shortened = True

    def close(self) -> None:
        self.sock.close()

    def dropped(self) -> bool:
        """Did the server close this idle connection (or send something unasked)?"""
        if self.pending:
            return True
        poller = select.poll()  # not select(): it fails on descriptors above 1023
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def read_response(
        self, method: str, sink: Callable[[bytes], None] | None = None, limit: int = 0
    ) -> tuple[Response, bool]:
        """The next answer, and whether the connection can be used again. With ``sink``,
        a 2xx answer's body (at most ``limit`` bytes) goes to it block by block and is
        not kept; any other answer is read whole (at most ``max_answer`` bytes)."""
        for _ in range(MAX_INTERIM + 1):
            head = self.read_head()
            lines = head.decode("latin-1").split("\r\n")
            if len(lines) > MAX_HEADER_LINES:
                raise BadResponse(f"more than {MAX_HEADER_LINES} header lines")
            status_line = lines[0].split(" ", 2)
            if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
                raise BadResponse(f"not an HTTP/1.x answer: {lines[0][:40]!r}")
            try:
                status = int(status_line[1])
            except ValueError:
                raise BadResponse(f"bad status in {lines[0][:40]!r}") from None
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if not 100 <= status < 200:
                break
            # an interim answer (100 Continue): the real one follows
        else:
            raise BadResponse(f"more than {MAX_INTERIM} interim (1xx) answers")
        keep = status_line[0] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        framed = chunked or "content-length" in headers
        data = b""
        if method != "HEAD" and status not in (204, 304):
            if sink is not None and 200 <= status < 300:
                for block in self._body(headers, chunked, limit):
                    sink(block)
            else:
                data = b"".join(self._body(headers, chunked, self.max_answer))
            keep = keep and framed  # a body up to the close: the connection is spent
        return Response(status, headers, data), keep

    def _body(self, headers: Mapping[str, str], chunked: bool, limit: int) -> Iterator[bytes]:
        """The answer's body in blocks, at most ``limit`` bytes in all."""
        if chunked:
            total = 0
            while True:
                text = self._read_line().split(b";", 1)[0].strip()
                try:
                    size = int(text, 16)
                except ValueError:
                    raise BadResponse("bad chunk size") from None
                if size < 0:
                    raise BadResponse("bad chunk size")
                total += size
                _check_size(total, limit)
                if size == 0:
                    break
                yield from self._exactly(size)
                self._read_line()
            for _ in range(MAX_HEADER_LINES):  # trailers, up to the empty line
                if not self._read_line():
                    return
            raise BadResponse(f"more than {MAX_HEADER_LINES} trailer lines")
        if "content-length" in headers:
            value = headers["content-length"]
            if not value.isdigit():  # no sign, no spaces inside: "-1" and "1e9" are bad answers
                raise BadResponse(f"bad Content-Length {value[:20]!r}")
            size = int(value)
            _check_size(size, limit)
            yield from self._exactly(size)
            return
        have, block = 0, self.pending or self._recv()  # no length: the body runs to the close
        self.pending = b""
        while block:
            have += len(block)
            _check_size(have, limit)
            yield block
            block = self._recv()

    def read_head(self) -> bytes:
        while (end := self.pending.find(b"\r\n\r\n")) < 0:
            if len(self.pending) > MAX_HEAD:
                raise BadResponse("the answer's headers are too long")
            self._receive()
        head, self.pending = self.pending[:end], self.pending[end + 4 :]
        return head

    def _exactly(self, size: int) -> Iterator[bytes]:
        """The next ``size`` bytes, in blocks as they arrive."""
        if len(self.pending) >= size:
            block, self.pending = self.pending[:size], self.pending[size:]
            if block:
                yield block
            return
        left = size - len(self.pending)
        if self.pending:
            yield self.pending
        self.pending = b""
        while left:
            block = self._recv()
            if not block:
                raise ConnectionResetError("the server closed the connection")
            if len(block) > left:
                block, self.pending = block[:left], block[left:]
            left -= len(block)
            yield block

    def _read_line(self) -> bytes:
        while (end := self.pending.find(b"\r\n")) < 0:
            if len(self.pending) > MAX_LINE:
                raise BadResponse(f"a chunk-size or trailer line over {MAX_LINE} bytes")
            self._receive()
        line, self.pending = self.pending[:end], self.pending[end + 2 :]
        return line

    def _receive(self) -> None:
        """More of the answer's head or of a chunk-size line (both short: bounded)."""
        block = self._recv()
        if not block:
            raise ConnectionResetError("the server closed the connection")
        self.pending += block

    def _recv(self) -> bytes:
        self.check_deadline()
        return self.sock.recv(65536)


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise BadResponse(f"an answer of over {limit:,} bytes")


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
        self._idle: dict[_Origin, list[_Connection]] = {}
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

        def write(connection: _Connection, head: str) -> None:
            connection.sock.sendall(_head_bytes(connection, head) + data)

        return self._exchange(method, url, headers, len(data), write, timeout=timeout)

    def fetch(
        self, url: str, headers: Mapping[str, str], sink: Callable[[bytes], None], limit: int
    ) -> Response:
        """``GET url``: a 2xx answer's body, at most ``limit`` bytes, goes to ``sink`` block by
        block as it arrives (memory stays flat), within ``read_timeout`` plus the time it
        takes at 256 KiB/s; any other answer comes back whole, as from ``request``."""

        def write(connection: _Connection, head: str) -> None:
            connection.sock.sendall(_head_bytes(connection, head))

        return self._exchange("GET", url, headers, 0, write, sink, limit)

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
        write: Callable[[_Connection, str], None],
        sink: Callable[[bytes], None] | None = None,
        limit: int = 0,
        timeout: float | None = None,
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
            response, keep = connection.read_response(method, sink, limit)
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

    def _take(self, origin: _Origin) -> _Connection:
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle:
                connection = idle.pop()
                if not connection.dropped():
                    return connection
                connection.close()
        return self._connect(origin)

    def _give_back(self, origin: _Origin, connection: _Connection) -> None:
        with self._lock:
            self._idle.setdefault(origin, []).append(connection)

    def _connect(self, origin: _Origin) -> _Connection:
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
        connection = _Connection(sock, host_header, self._read_timeout)
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
    answer = _Connection(sock, authority, timeout)
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


def _head_bytes(connection: _Connection, head: str) -> bytes:
    return f"{head}{connection.extra}Host: {connection.host}\r\n\r\n".encode("latin-1")


def _send(
    connection: _Connection,
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
