"""``doctor`` against a store that answers with hostile text: what it prints stays one line."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.cli.conftest import Run

pytestmark = pytest.mark.usefixtures("env_credentials")

# XML allows a line break in an error code: a CI log would take the second line as a command.
HOSTILE = b"<Error><Code>AccessDenied\n::error title=pwned::x</Code><Message>m</Message></Error>"


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"<ListAllMyBucketsResult/>" if self.path == "/" else HOSTILE
        self.send_response(200 if self.path == "/" else 403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_stores_error_code_cannot_start_a_line(run: Run, endpoint: str) -> None:
    result = run("doctor", "--bucket", "b", "--endpoint-url", endpoint, "--region", "us-east-1")
    assert result.exit_code == 1, result.stdout
    assert "FAIL  bucket" in result.stdout
    assert "AccessDenied\\n::error title=pwned::x" in result.stdout
    assert not any(line.startswith("::") for line in result.stdout.splitlines())
