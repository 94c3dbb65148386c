"""Keep-alive HTTP/1.1 connections to the object store, for the push's PUTs.

Push spends most of its CPU on HTTP requests, on machines whose cores the
store (or the CI job) also needs. This module writes each request head in one
piece and reads the (small) answer with a parser of what S3 sends, over a
small pool of keep-alive sockets. Measured on 1,000 pre-signed 4 KiB PUTs:
0.13 s of CPU, against 0.30 s through ``http.client`` and 0.65 s through
urllib3.

- Bodies under 64 KiB go in the same ``send`` as the head; larger ones over
  plain ``http://`` go from the file to the socket with ``sendfile`` (no copy
  through Python), over TLS in 1 MiB reads.
- Answers: a status line, headers, then a ``Content-Length`` or chunked
  body, or a body up to the connection's close; interim 1xx answers skipped.
- Header names and values, and the request target, are refused if they hold
  a line break or control character (``ValueError``): nothing the backend
  sends can inject a header.

Nothing here retries: a failed request raises ``OSError`` and its connection
is closed; the push engine decides what to do.
"""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

from s3sign.errors import ConfigError

if TYPE_CHECKING:  # imported when the first TLS connection is made: plain HTTP skips it
    import ssl

BLOCK_SIZE = 1024 * 1024
SMALL_BODY = 64 * 1024
MAX_HEAD = 64 * 1024
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")  # control characters, CR and LF among them
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")

_Origin = tuple[str, str, int]


class BodyShrank(Exception):  # not an OSError: it is not a network failure
    """The file ended before the declared length was sent."""


class BadResponse(ConnectionError):
    """The server's answer is not HTTP/1.x as expected."""


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

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock = sock
        self.host = host  # the Host header: what the URL was signed for
        self.pending = b""
        self.prefix = ""  # through a forwarding proxy: "http://host[:port]" before the path
        self.extra = ""  # through a forwarding proxy: its Proxy-Authorization line

    def close(self) -> None:
        self.sock.close()

    def dropped(self) -> bool:
        """Did the server close this idle connection (or send something unasked)?"""
        if self.pending:
            return True
        poller = select.poll()  # not select(): it fails on descriptors above 1023
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def read_response(self, method: str) -> tuple[Response, bool]:
        """The next answer, and whether the connection can be used again."""
        while True:
            head = self.read_head()
            lines = head.decode("latin-1").split("\r\n")
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
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            break
        keep = status_line[0] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304):
            data = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = self._read_chunked()
        elif "content-length" in headers:
            try:
                data = self._read_exactly(int(headers["content-length"]))
            except ValueError:
                raise BadResponse("bad Content-Length") from None
        else:
            data, keep = self._read_to_close(), False
        return Response(status, headers, data), keep

    def read_head(self) -> bytes:
        while (end := self.pending.find(b"\r\n\r\n")) < 0:
            if len(self.pending) > MAX_HEAD:
                raise BadResponse("the answer's headers are too long")
            self._receive()
        head, self.pending = self.pending[:end], self.pending[end + 4 :]
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.pending) < size:
            self._receive()
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def _read_line(self) -> bytes:
        while (end := self.pending.find(b"\r\n")) < 0:
            self._receive()
        line, self.pending = self.pending[:end], self.pending[end + 2 :]
        return line

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                size = int(self._read_line().split(b";", 1)[0], 16)
            except ValueError:
                raise BadResponse("bad chunk size") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            self._read_line()

    def _read_to_close(self) -> bytes:
        chunks = [self.pending]
        while block := self.sock.recv(65536):
            chunks.append(block)
        self.pending = b""
        return b"".join(chunks)

    def _receive(self) -> None:
        block = self.sock.recv(65536)
        if not block:
            raise ConnectionResetError("the server closed the connection")
        self.pending += block


class Connections:
    """Idle keep-alive connections per origin, shared by threads; proxies from the environment.

    ``https_proxy``/``http_proxy`` (or upper case) and ``no_proxy`` are honoured
    as curl does: HTTPS goes through a ``CONNECT`` tunnel, plain HTTP is
    forwarded with the whole URL as the request target.
    """

    def __init__(
        self,
        connect_timeout: float,
        read_timeout: float,
        ca_bundle: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ca_bundle = ca_bundle  # a private CA (AWS_CA_BUNDLE, as in the AWS CLI)
        self._proxies = Proxies(os.environ if environ is None else environ)
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
        self, method: str, url: str, headers: Mapping[str, str], data: bytes = b""
    ) -> Response:
        """Send ``data`` (a small body, maybe empty); the whole answer."""

        def write(connection: _Connection, head: str) -> None:
            connection.sock.sendall(_head_bytes(connection, head) + data)

        return self._exchange(method, url, headers, len(data), write)

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
    ) -> Response:
        parts = urlsplit(url)
        scheme = parts.scheme
        origin = (scheme, parts.hostname or "", parts.port or _default_port(scheme))
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        _check_request(method, target, headers)
        connection = self._take(origin)
        try:
            write(connection, _request_head(method, connection.prefix + target, headers, length))
            response, keep = connection.read_response(method)
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
                _tunnel(sock, f"{name}:{port}", proxy)
            if scheme == "https":
                if self._tls is None:
                    import ssl

                    self._tls = ssl.create_default_context(cafile=self._ca_bundle)
                sock = self._tls.wrap_socket(sock, server_hostname=host)
            sock.settimeout(self._read_timeout)  # from here on, a stall
        except BaseException:
            sock.close()
            raise
        connection = _Connection(sock, host_header)
        if proxy and scheme == "http":  # forwarded: the whole URL is the request target
            connection.prefix = f"http://{host_header}"
            connection.extra = proxy.authorization
        return connection


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str  # a Proxy-Authorization header line, or ""


class Proxies:
    """``http_proxy``, ``https_proxy`` and ``no_proxy`` (lower case first, as curl reads them)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        def get(name: str) -> str:
            return environ.get(name) or environ.get(name.upper()) or ""

        self._by_scheme = {
            scheme: _parse_proxy(f"{scheme}_proxy", get(f"{scheme}_proxy"))
            for scheme in ("http", "https")
        }
        bypass = get("no_proxy").split(",")
        self._bypass = [item.strip().lower() for item in bypass if item.strip()]

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self._by_scheme.get(scheme)
        if proxy is None or self._bypassed(host.lower(), port):
            return None
        return proxy

    def _bypassed(self, host: str, port: int) -> bool:
        for item in self._bypass:
            if item == "*":
                return True
            name, _, item_port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
            if item_port and item_port != str(port):
                continue
            name = name.lstrip(".")
            if host == name or host.endswith("." + name):
                return True
        return False


def _parse_proxy(variable: str, text: str) -> Proxy | None:
    if not text:
        return None
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(
            f"{variable}: {parts.scheme}://{parts.hostname} is not an http:// proxy",
            hint="give it as http://HOST:PORT (HTTPS still runs end to end, in a tunnel)",
        )
    authorization = ""
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = f"Proxy-Authorization: Basic {base64.b64encode(credentials).decode()}\r\n"
    return Proxy(parts.hostname, parts.port or 80, authorization)


def _tunnel(sock: socket.socket, authority: str, proxy: Proxy) -> None:
    """Ask the proxy for a tunnel to ``authority`` (``CONNECT``), for TLS end to end."""
    sock.sendall(
        f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{proxy.authorization}\r\n".encode()
    )
    answer = _Connection(sock, authority)
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
    """``METHOD target HTTP/1.1`` and the headers, without Host and the final blank line."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
    if not any(name.lower() == "content-length" for name in headers):
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
            sent = sock.sendfile(body, offset, min(BLOCK_SIZE, left))
            if not sent:
                raise BodyShrank
            offset, left = offset + sent, left - sent
            on_sent(sent)
        return
    body.seek(offset)
    while left:
        block = body.read(min(BLOCK_SIZE, left))
        if not block:
            raise BodyShrank
        sock.sendall(block)
        left -= len(block)
        on_sent(len(block))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
