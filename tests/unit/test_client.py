"""The backend client's retries: equal-jitter backoff, and a longer wait once it was reached;
and the backend's clock, read from its Date header."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from s3sign.errors import UnreachableError
from s3sign.local.seaweed import free_ports
from s3sign.retry import backoff
from s3sign.transfer.backend import RESTART_ATTEMPTS, BackendClient
from s3sign.units import http_date

INFO = {
    "protocol": 1,
    "keyPrefix": "runs",
    "maxFileSize": 10,
    "maxFilesPerRequest": 500,
    "multipartThreshold": 100,
    "partSize": 16,
}


def test_backoff_waits_at_least_half_and_at_most_the_nominal_delay() -> None:
    for attempt, nominal in ((1, 0.5), (2, 1.0), (4, 4.0), (10, 20.0)):
        waits = [backoff(attempt) for _ in range(200)]
        assert min(waits) >= nominal / 2
        assert max(waits) <= nominal


class Info(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps(INFO).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_backend_gone_mid_push_gets_more_attempts_than_one_never_reached() -> None:
    never: list[float] = []
    port = free_ports(1)[0]
    with pytest.raises(UnreachableError, match="5 attempts"):
        BackendClient(f"http://127.0.0.1:{port}", "t", sleep=never.append).info()
    assert len(never) == 4

    server = ThreadingHTTPServer(("127.0.0.1", 0), Info)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gone: list[float] = []
    client = BackendClient(f"http://127.0.0.1:{server.server_port}", "t", sleep=gone.append)
    assert client.info().key_prefix == "runs"
    server.shutdown()
    server.server_close()
    client.close()  # its kept-alive connection would outlive the server's socket
    with pytest.raises(UnreachableError, match=f"{5 + RESTART_ATTEMPTS} attempts"):
        client.info()
    assert len(gone) == 4 + RESTART_ATTEMPTS
    assert sum(gone) >= 25  # at least half of 0.5+1+2+4+8+16+20 s: time for a restart


def test_http_dates_are_read_and_anything_else_is_none() -> None:
    moment = datetime(2026, 2, 28, 23, 5, 9, tzinfo=UTC)
    assert http_date(format_datetime(moment, usegmt=True)) == moment
    assert http_date("Sun, 06 Nov 1994 08:49:37 GMT") == datetime(
        1994, 11, 6, 8, 49, 37, tzinfo=UTC
    )
    for bad in (
        "",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 CET",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "a b c d e GMT",
    ):
        assert http_date(bad) is None, bad
