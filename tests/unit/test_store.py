"""The backend's store client: which answers it retries, and which it reports as transient."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from s3sign.credentials import Credentials
from s3sign.local.seaweed import free_ports
from s3sign.signing.presign import Presigner
from s3sign.signing.store import ATTEMPTS, ObjectStore, StoreError


class Scripted(BaseHTTPRequestHandler):
    """Answers HEAD with the next status of ``statuses`` (then 200), counting the calls."""

    statuses: ClassVar[list[int]] = []
    calls: ClassVar[int] = 0

    def do_HEAD(self) -> None:
        type(self).calls += 1
        status = self.statuses.pop(0) if self.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "3" if status == 200 else "0")
        self.send_header("ETag", '"abc"')
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    presigner = Presigner(Credentials("AKIAEXAMPLE", "secret"), "us-east-1", endpoint)
    Scripted.calls = 0
    yield ObjectStore(lambda: presigner, "bucket")
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_overload_and_timeouts_are_retried(store: ObjectStore, status: int) -> None:
    Scripted.statuses = [status, status]
    info = store.head("key")
    assert info is not None
    assert info.size == 3
    assert Scripted.calls == 3


def test_an_overloaded_store_is_reported_as_transient(store: ObjectStore) -> None:
    """So that complete answers storage_unavailable, and the worker asks again later."""
    Scripted.statuses = [429] * ATTEMPTS
    with pytest.raises(StoreError) as raised:
        store.head("key")
    assert raised.value.transient
    assert Scripted.calls == ATTEMPTS


def test_a_refusal_is_not_retried(store: ObjectStore) -> None:
    Scripted.statuses = [403]
    with pytest.raises(StoreError) as raised:
        store.head("key")
    assert not raised.value.transient
    assert Scripted.calls == 1


def test_an_unreachable_store_is_transient_and_says_why() -> None:
    endpoint = f"http://127.0.0.1:{free_ports(1)[0]}"
    presigner = Presigner(Credentials("AKIAEXAMPLE", "secret"), "us-east-1", endpoint)
    with pytest.raises(StoreError) as raised:
        ObjectStore(lambda: presigner, "bucket").head("key")
    assert raised.value.transient
    assert str(raised.value) == "the object store is unreachable: connection refused"


class ReadOnly(BaseHTTPRequestHandler):
    """A bucket these credentials may read but not write: every PUT is AccessDenied."""

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_store_check_says_why_it_could_not_run() -> None:
    """No write access: the check fails with S3's reason (doctor says 'not checked'), and
    nothing was stored that it would have to delete."""
    from s3sign.server.storecheck import check_store

    server = ThreadingHTTPServer(("127.0.0.1", 0), ReadOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        presigner = Presigner(Credentials("AKIAEXAMPLE", "secret"), "us-east-1", endpoint)
        with pytest.raises(StoreError, match=r"scratch PUT \(403 AccessDenied\)"):
            check_store(ObjectStore(lambda: presigner, "bucket"), "runs")
    finally:
        server.shutdown()
        server.server_close()


def test_a_silent_store_costs_a_call_its_deadline_not_more() -> None:
    """Each answer within its timeout, the call with its retries within its own: a server
    thread is not held by a store that never answers."""
    from s3sign.signing.presign import SignRequest

    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog), never answers
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
    presigner = Presigner(Credentials("AKIAEXAMPLE", "secret"), "us-east-1", endpoint)
    store = ObjectStore(lambda: presigner, "bucket")
    started = time.monotonic()
    with pytest.raises(StoreError, match="no whole answer within") as raised:
        store.send_signed(SignRequest("bucket", "key", method="HEAD"), timeouts=(0.5, 1.2))
    assert raised.value.transient
    assert 1.0 < time.monotonic() - started < 3.0
    silent.close()


def test_a_request_that_cannot_be_sent_fails_at_once(store: ObjectStore) -> None:
    """A content type with a line break is the caller's error: no retries, no store call."""
    with pytest.raises(StoreError) as raised:
        store.create_multipart("key", "a/b\r\nx: y")
    assert (raised.value.code, raised.value.status, raised.value.transient) == (
        "invalid_request",
        422,
        False,
    )
    assert Scripted.calls == 0
