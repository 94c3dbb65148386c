"""Hostile clients against the real ``s3sign serve``: slow heads, slow bodies, idle
connections. Each is cut off within ``request_timeout`` (2 s here), and the server keeps
answering everyone else meanwhile."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from s3sign.local.seaweed import LocalS3
from tests.integration.conftest import Backend, running_backend

TIMEOUT = 2.0  # S3SIGN_REQUEST_TIMEOUT for these servers
SLACK = 3.0  # seconds past the timeout a cut may take on this shared machine


@pytest.fixture(scope="module")
def strict_backend(
    local_s3: LocalS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    log = tmp_path_factory.mktemp("serve-strict") / "serve.log"
    with running_backend(local_s3, log, request_timeout=f"{TIMEOUT:g}s") as backend:
        yield backend


def connect(backend: Backend) -> socket.socket:
    port = int(backend.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def closed_after(
    sock: socket.socket, dribble: bytes = b"", every: float = 0.5
) -> tuple[float, bytes]:
    """Send ``dribble`` a byte every ``every`` seconds (then nothing) until the server
    closes the connection: the seconds that took, and what it answered. (A server that
    closes with bytes of ours unread resets the connection, which may lose its answer.)"""
    started = time.monotonic()
    answer = b""
    sock.setblocking(False)
    try:
        for byte in dribble:
            with contextlib.suppress(BlockingIOError):
                while chunk := sock.recv(65536):
                    answer += chunk
                return time.monotonic() - started, answer  # b"": closed
            sock.send(bytes([byte]))
            time.sleep(every)
        sock.settimeout(TIMEOUT + 3 * SLACK)
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - started, answer


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_dribbled_head_is_cut_off(strict_backend: Backend) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    seconds, answer = closed_after(connect(strict_backend), head)
    assert seconds < TIMEOUT + SLACK, seconds
    assert answer == b""  # it never asked anything whole: no answer, just the close


def test_a_connection_that_sends_nothing_is_closed(strict_backend: Backend) -> None:
    seconds, answer = closed_after(connect(strict_backend))
    assert TIMEOUT - 0.5 < seconds < TIMEOUT + SLACK, seconds
    assert answer == b""


def test_a_dribbled_body_gets_408(strict_backend: Backend) -> None:
    run = f"run-{uuid.uuid4().hex[:10]}"
    body = b'{"files": [{"fileName": "a.txt", "fileSize": 1}]}' + b" " * 200
    head = (
        f"POST /v1/runs/{run}/uploads HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {strict_backend.token(run)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = connect(strict_backend)
    sock.sendall(head)
    seconds, answer = closed_after(sock, body)
    assert seconds < TIMEOUT + SLACK, seconds
    if answer:  # else the connection was reset before the answer could be read
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b'"request_timeout"' in answer


def test_the_next_request_on_a_kept_alive_connection_is_timed_too(strict_backend: Backend) -> None:
    sock = connect(strict_backend)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
    slow = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 40
    seconds, answer = closed_after(sock, slow)
    assert seconds < TIMEOUT + SLACK, seconds
    assert answer == b""


def test_four_hundred_idle_connections_cost_no_one_else(strict_backend: Backend) -> None:
    idle = [connect(strict_backend) for _ in range(400)]
    try:
        started = time.monotonic()
        assert requests.get(f"{strict_backend.url}/healthz", timeout=5).status_code == 200
        run = f"run-{uuid.uuid4().hex[:10]}"
        answer = strict_backend.post(
            f"/v1/runs/{run}/uploads",
            {"files": [{"fileName": "a.txt", "fileSize": 1}]},
            strict_backend.token(run),
        )
        assert answer.status_code == 200
        assert time.monotonic() - started < TIMEOUT  # served while they all wait
        time.sleep(TIMEOUT + SLACK)
        for sock in idle:
            sock.settimeout(0.5)
            assert sock.recv(1) == b""  # closed by the server
    finally:
        for sock in idle:
            sock.close()


def test_the_server_logs_no_traceback_for_them(strict_backend: Backend, tmp_path: Path) -> None:
    log = strict_backend.log.read_text()
    assert "Traceback" not in log
