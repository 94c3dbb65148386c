"""The push's keep-alive connections: reuse, dropped connections, short files, TLS."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s3sign.http.connections import Connections
from s3sign.http.transport import Proxies, Transport
from s3sign.http.wire import BodyShrank, Response, network_problem
from s3sign.local.seaweed import free_ports
from tests.netkit import ForwardProxy, private_ca


class Store(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies: list[bytes] = []
        self.targets: list[str] = []
        self.connections = 0
        self.close_after_answer = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Store

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_PUT(self) -> None:
        self.server.targets.append(self.path)
        self.server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("ETag", '"abc"')
        self.send_header("Content-Length", "0")
        if self.server.close_after_answer:
            self.send_header("Connection", "close")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def store() -> Iterator[Store]:
    server = Store()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(bytes(range(256)) * 9000)  # 2.2 MiB: more than one 1 MiB block
    return path


def http(
    read: float = 5, environ: dict[str, str] | None = None, ca: Path | None = None
) -> Connections:
    """Connections to S3 with these proxies and this CA bundle, 5 s to connect."""
    proxies = Proxies.from_environ(environ or {})
    transport = Transport(proxies, s3_ca_bundle=str(ca) if ca else None, connect_timeout=5)
    return Connections(transport, "s3", read)


def put(connections: Connections, url: str, path: Path, offset: int, length: int) -> list[int]:
    progress: list[int] = []
    with open(path, "rb") as body:
        response = connections.send("PUT", url, {}, body, offset, length, progress.append)
    assert response.status == 200
    assert response.headers["etag"] == '"abc"'
    return progress


def test_bodies_and_ranges_arrive_over_one_kept_alive_connection(
    store: Store, payload: Path
) -> None:
    url = f"http://127.0.0.1:{store.server_port}/bucket/key?X-Amz-Signature=x"
    connections = http()
    data = payload.read_bytes()

    progress = put(connections, url, payload, 0, len(data))
    put(connections, url, payload, 1000, 5000)
    put(connections, url, payload, len(data) - 7, 7)

    assert store.bodies == [data, data[1000:6000], data[-7:]]
    assert store.targets == ["/bucket/key?X-Amz-Signature=x"] * 3
    assert sum(progress) == len(data)
    assert len(progress) == 3  # reported per 1 MiB block
    assert store.connections == 1
    connections.close()


def test_a_connection_the_server_closes_is_not_used_again(store: Store, payload: Path) -> None:
    url = f"http://127.0.0.1:{store.server_port}/b/k"
    connections = http()
    store.close_after_answer = True
    put(connections, url, payload, 0, 10)
    put(connections, url, payload, 0, 10)
    assert store.connections == 2
    assert len(store.bodies) == 2


def test_an_idle_connection_the_server_dropped_is_replaced(store: Store, payload: Path) -> None:
    url = f"http://127.0.0.1:{store.server_port}/b/k"
    connections = http()
    Handler.timeout = 0.2  # the server closes a connection idle this long, without notice
    try:
        put(connections, url, payload, 0, 10)
        time.sleep(0.6)
        put(connections, url, payload, 0, 10)  # would fail on the dropped connection
    finally:
        Handler.timeout = None
    assert store.connections == 2


@pytest.mark.parametrize("length", [20, 200_000])  # one read, and sendfile
def test_a_file_shorter_than_declared_raises_body_shrank(
    store: Store, payload: Path, length: int
) -> None:
    url = f"http://127.0.0.1:{store.server_port}/b/k"
    size = payload.stat().st_size
    with pytest.raises(BodyShrank):
        put(http(), url, payload, size - 10, length)


def test_https_bodies_are_read_and_sent(
    store: Store, payload: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = private_ca(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.cert, ca.key)
    store.socket = context.wrap_socket(store.socket, server_side=True)
    url = f"https://127.0.0.1:{store.server_port}/b/k"

    with pytest.raises(ssl.SSLCertVerificationError) as untrusted:  # not without the bundle
        put(http(), url, payload, 0, 10)
    assert network_problem(untrusted.value).startswith("its TLS certificate is not trusted")

    connections = http(ca=ca.ca)
    progress = put(connections, url, payload, 5, 2_000_000)
    assert store.bodies[-1] == payload.read_bytes()[5:2_000_005]
    assert progress == [1024 * 1024, 2_000_000 - 1024 * 1024]


PAUSE = b"<pause>"


class Scripted:
    """A server that reads each request and answers with the next raw bytes of a script
    (sent in pieces where it says ``PAUSE``)."""

    def __init__(self, answers: list[bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answers = answers
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            for answer in self.answers:
                received = b""
                while b"\r\n\r\n" not in received:
                    received += connection.recv(65536)
                head, _, body = received.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                for piece in answer.split(PAUSE):  # the pieces in separate segments
                    connection.sendall(piece)
                    time.sleep(0.1)
                if b"close" in answer.lower():
                    return


def send(server: Scripted, payload: Path, method: str = "PUT", **headers: str) -> Response:
    with open(payload, "rb") as body:
        return http().send(
            method, f"http://127.0.0.1:{server.port}/b/k?x=1", headers, body, 0, 3, lambda _: None
        )


@pytest.mark.parametrize(
    ("answer", "status", "data"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, b"ok"),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            201,
            b"",
        ),
        (
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\n<Erro\r\n3\r\nr/>\r\n0\r\nX-Trailer: 1\r\n\r\n",
            400,
            b"<Error/>",
        ),
        (b"HTTP/1.0 503 Busy\r\nConnection: close\r\n\r\nslow down", 503, b"slow down"),
    ],
)
def test_answers_s3_may_send(payload: Path, answer: bytes, status: int, data: bytes) -> None:
    response = send(Scripted([answer]), payload)
    assert (response.status, response.data) == (status, data)


def test_request_head_is_what_was_signed(payload: Path) -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    send(server, payload, **{"Content-Type": "text/plain", "x-amz-meta-a": "b c"})
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "PUT /b/k?x=1 HTTP/1.1"
    assert sorted(lines[1:]) == sorted(
        [
            f"Host: 127.0.0.1:{server.port}",
            "Content-Type: text/plain",
            "x-amz-meta-a: b c",
            "Content-Length: 3",
        ]
    )
    assert body == payload.read_bytes()[:3]


@pytest.mark.parametrize(
    "headers", [{"x-amz-meta-a": "b\r\nInjected: 1"}, {"Bad\nName": "v"}, {"a:b": "v"}]
)
def test_headers_that_would_inject_are_refused(payload: Path, headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="header"), open(payload, "rb") as body:
        http().send("PUT", "http://127.0.0.1:9/b/k", headers, body, 0, 3, print)


def test_a_garbled_answer_is_a_connection_error(payload: Path) -> None:
    with pytest.raises(ConnectionError):
        send(Scripted([b"SMTP ready\r\n\r\n"]), payload)


def test_plain_http_goes_through_the_proxy_with_its_credentials(
    store: Store, payload: Path
) -> None:
    proxy = ForwardProxy()
    environ = {"http_proxy": f"http://user:p%40ss@127.0.0.1:{proxy.port}"}
    connections = http(environ=environ)
    url = f"http://127.0.0.1:{store.server_port}/b/k?X-Amz-Signature=x"
    with open(payload, "rb") as body:
        assert connections.send("PUT", url, {}, body, 0, 10, print).status == 200
    assert store.bodies == [payload.read_bytes()[:10]]
    assert proxy.heads[0].startswith(f"PUT {url} HTTP/1.1\r\n")
    assert "Proxy-Authorization: Basic dXNlcjpwQHNz" in proxy.heads[0]  # user:p@ss


def test_https_goes_through_a_connect_tunnel(store: Store, payload: Path, tmp_path: Path) -> None:
    ca = private_ca(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.cert, ca.key)
    store.socket = context.wrap_socket(store.socket, server_side=True)
    proxy = ForwardProxy()
    environ = {"HTTPS_PROXY": f"127.0.0.1:{proxy.port}"}
    connections = http(environ=environ, ca=ca.ca)
    with open(payload, "rb") as body:
        url = f"https://127.0.0.1:{store.server_port}/b/k"
        assert connections.send("PUT", url, {}, body, 0, 10, print).status == 200
    assert store.bodies == [payload.read_bytes()[:10]]
    assert proxy.heads == [
        f"CONNECT 127.0.0.1:{store.server_port} HTTP/1.1\r\nHost: 127.0.0.1:{store.server_port}"
    ]


def test_no_proxy_goes_direct(store: Store, payload: Path) -> None:
    proxy = ForwardProxy()
    environ = {"http_proxy": f"http://127.0.0.1:{proxy.port}", "no_proxy": "localhost,127.0.0.1"}
    put(
        http(environ=environ),
        f"http://127.0.0.1:{store.server_port}/b/k",
        payload,
        0,
        10,
    )
    assert proxy.heads == []


def test_a_failed_request_says_why_in_a_few_words(payload: Path) -> None:
    url = f"http://127.0.0.1:{free_ports(1)[0]}/b/k"
    with pytest.raises(ConnectionRefusedError) as refused:
        put(http(), url, payload, 0, 10)
    assert network_problem(refused.value) == "connection refused"
    assert network_problem(socket.gaierror(-2, "Name or service not known")) == (
        "host name not found"
    )
    assert network_problem(TimeoutError()) == "timed out"
    assert network_problem(OSError(5, "odd")) == "OSError"


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("chunked-forever", "an answer of over 1,048,576 bytes"),
        ("huge-length", "an answer of over 1,048,576 bytes"),
        ("to-close-flood", "an answer of over 1,048,576 bytes"),
        ("continue-flood", "more than 8 interim (1xx) answers"),
        ("dribble", "no whole answer within 1 s of the request"),
        ("endless-chunk-line", "a chunk-size or trailer line over 4096 bytes"),
        ("negative-length", "bad Content-Length '-1'"),
        ("header-flood", "the answer's headers are too long"),
    ],
)
def test_a_hostile_answer_is_bounded_in_time_and_size(payload: Path, mode: str, why: str) -> None:
    """Every answer that once hung a push or ate its memory: a ConnectionError (or, past
    the deadline, a TimeoutError) within a second or two, saying what was wrong."""
    from tests.reliability.hostile import HostilePeer

    with HostilePeer(mode) as peer, open(payload, "rb") as body:
        started = time.monotonic()
        with pytest.raises(OSError) as failed:  # noqa: PT011 - each kind is named below
            http(read=1).send("PUT", f"{peer.url}/b/k", {}, body, 0, 3, lambda _: None)
    assert time.monotonic() - started < 3
    assert why in network_problem(failed.value)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + PAUSE + b"late " + PAUSE + b"body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" + PAUSE + b"late body",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + PAUSE
        + b"5\r\nlate \r\n"
        + PAUSE
        + b"4\r\nbody\r\n0\r\n\r\n",
    ],
    ids=["to-close", "length", "chunked"],
)
def test_a_body_that_comes_after_its_head(payload: Path, answer: bytes) -> None:
    """Each framing, with the body in later segments than the head: all of it is read
    (once, a body up to the close that came after its head was taken for empty)."""
    assert send(Scripted([answer]), payload).data == b"late body"
    server = Scripted([answer])
    blocks: list[bytes] = []
    url = f"http://127.0.0.1:{server.port}/b/k"
    response = http().fetch(url, {}, lambda block: blocks.append(bytes(block)), 100)
    assert (response.status, response.data, b"".join(blocks)) == (200, b"", b"late body")


def test_fetch_keeps_a_download_within_its_limit_and_an_error_whole() -> None:
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
    with pytest.raises(ConnectionError, match="an answer of over 9 bytes"):
        http().fetch(f"http://127.0.0.1:{Scripted([body]).port}/k", {}, print, 9)
    error = b"HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\n<Error>"
    blocks: list[bytes] = []
    url = f"http://127.0.0.1:{Scripted([error]).port}/k"
    response = http().fetch(url, {}, lambda block: blocks.append(bytes(block)), 100)
    assert (response.status, response.data, blocks) == (404, b"<Error>", [])
