"""One HTTP/1.1 connection's side of the wire: reading an answer (status line, headers, a
``Content-Length``, chunked or read-to-close body, interim 1xx answers skipped) within the
limits and the deadline that ``connections.py`` describes, and the errors that say what
went wrong. Whatever the peer sends, memory and time stay bounded here.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

BLOCK_SIZE = 1024 * 1024
STREAM_BUFFER = 1024 * 1024  # a streamed body is read into this much at a time
Sink = Callable[[bytes | memoryview], None]  # takes a block of a body (valid during the call)
SMALL_BODY = 64 * 1024
MAX_HEAD = 64 * 1024
MAX_HEADER_LINES = 100
MAX_LINE = 4096  # a chunk-size line or a trailer
MAX_INTERIM = 8  # 1xx answers before the real one
MAX_ANSWER = 1024 * 1024  # an answer's body, by default


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


class Connection:
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
        self,
        method: str,
        sink: Sink | None = None,
        limit: int = 0,
        wanted: int | None = None,
    ) -> tuple[Response, bool]:
        """The next answer, and whether the connection can be used again. With ``sink``,
        a 2xx answer's body (at most ``limit`` bytes) goes to it block by block and is
        not kept (with ``wanted``, only an answer of that status: another 2xx is left
        unread and the connection closed); any other answer is read whole (at most
        ``max_answer`` bytes)."""
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
            if sink is not None and wanted not in (None, status) and 200 <= status < 300:
                return Response(status, headers, b""), False
            if sink is not None and 200 <= status < 300:
                for block in self._body(headers, chunked, limit, streamed=True):
                    sink(block)
            else:
                data = b"".join(self._body(headers, chunked, self.max_answer))
            keep = keep and framed  # a body up to the close: the connection is spent
        return Response(status, headers, data), keep

    def _body(
        self, headers: Mapping[str, str], chunked: bool, limit: int, streamed: bool = False
    ) -> Iterator[bytes | memoryview]:
        """The answer's body in blocks, at most ``limit`` bytes in all; ``streamed``: for a
        sink, a framed body in views of one buffer, each valid until the next is asked for
        (fewer, larger reads and no copies: a third of the CPU of a big download)."""
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
            yield from self._streamed(size) if streamed else self._exactly(size)
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

    def _streamed(self, size: int) -> Iterator[memoryview]:
        """``_exactly``, read into one reused buffer."""
        if self.pending:
            first, self.pending = self.pending[:size], self.pending[size:]
            size -= len(first)
            yield memoryview(first)
        buffer = memoryview(bytearray(min(size, STREAM_BUFFER)))
        while size:
            self.check_deadline()
            got = self.sock.recv_into(buffer, min(size, len(buffer)))
            if not got:
                raise ConnectionResetError("the server closed the connection")
            size -= got
            yield buffer[:got]

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
