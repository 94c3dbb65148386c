"""URLs from ``s3sign sign`` against a real S3 server that verifies signatures.

What is bound must be refused by the server when it differs; what was signed
must work, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from s3sign.cli import app
from s3sign.local.seaweed import LocalS3, free_ports
from tests.integration.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("s3_env")]


def sign(*args: str) -> dict[str, Any]:
    """Run ``s3sign sign ... -o json`` in-process and return the document."""
    result = CliRunner().invoke(app, ["sign", *args, "-o", "json"])
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def put(signed: dict[str, Any], body: bytes, **header_changes: str | None) -> requests.Response:
    headers = dict(signed["headers"])
    for field, value in header_changes.items():
        name = field.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    headers["Content-Length"] = str(len(body))
    return requests.put(signed["url"], data=body, headers=headers, timeout=30)


def key() -> str:
    return f"tests/{uuid.uuid4().hex}/a file+name~ü.txt"


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_signed_put_then_get_is_byte_identical(local_s3: LocalS3) -> None:
    body = os.urandom(100_000)
    name = key()
    signed = sign(
        local_s3.bucket,
        name,
        "--size",
        str(len(body)),
        "--content-type",
        "application/x-test",
        "--sha256",
        b64sha256(body),
        "--meta",
        "build=42",
    )
    response = put(signed, body)
    assert response.status_code == 200, response.text
    fetched = requests.get(sign(local_s3.bucket, name, "--method", "get")["url"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == body
    assert fetched.headers["Content-Type"] == "application/x-test"
    head = requests.head(sign(local_s3.bucket, name, "--method", "head")["url"], timeout=30)
    assert head.status_code == 200
    assert head.headers["x-amz-meta-build"] == "42"
    deleted = requests.delete(sign(local_s3.bucket, name, "--method", "delete")["url"], timeout=30)
    assert deleted.status_code == 204
    gone = requests.get(sign(local_s3.bucket, name, "--method", "get")["url"], timeout=30)
    assert gone.status_code == 404


def test_zero_byte_object(local_s3: LocalS3) -> None:
    signed = sign(local_s3.bucket, key(), "--size", "0")
    assert put(signed, b"").status_code == 200


@pytest.mark.parametrize(
    ("body", "changes", "status"),
    [
        (b"hello world!", {}, 403),  # one byte more than signed
        (b"hello worl", {}, 403),  # one byte less
        (b"hello world", {"Content_Type": "text/html"}, 403),  # another content type
        (b"hello world", {"Content_Type": None}, 403),  # signed header not sent
        (b"hello World", {}, 400),  # same size, body does not match the signed SHA-256
        (b"hello world", {"x_amz_checksum_sha256": None}, 403),  # checksum header dropped
    ],
)
def test_server_refuses_what_differs_from_the_signature(
    local_s3: LocalS3, body: bytes, changes: dict[str, str | None], status: int
) -> None:
    good = b"hello world"
    signed = sign(
        local_s3.bucket,
        key(),
        "--size",
        str(len(good)),
        "--content-type",
        "text/plain",
        "--sha256",
        b64sha256(good),
    )
    response = put(signed, body, **changes)
    assert response.status_code == status, response.text
    if status == 400:
        assert "BadDigest" in response.text or "XAmzContentChecksumMismatch" in response.text


def test_server_refuses_a_body_that_does_not_match_md5(local_s3: LocalS3) -> None:
    good = b"hello world"
    md5 = base64.b64encode(hashlib.md5(good).digest()).decode()
    signed = sign(local_s3.bucket, key(), "--size", "11", "--md5", md5)
    assert put(signed, b"hello World").status_code == 400
    assert put(signed, good).status_code == 200


def _edit_query(url: str, name: str, new_value: str) -> str:
    base, query = url.split("?", 1)
    params = [p.split("=", 1) for p in query.split("&")]
    return base + "?" + "&".join(f"{k}={new_value if k == name else v}" for k, v in params)


def test_server_refuses_edited_signature_and_expiry(local_s3: LocalS3) -> None:
    signed = sign(local_s3.bucket, key(), "--size", "2")
    signature = signed["url"].rsplit("=", 1)[1]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    tampered = {**signed, "url": _edit_query(signed["url"], "X-Amz-Signature", flipped)}
    assert put(tampered, b"ab").status_code == 403
    longer = {**signed, "url": _edit_query(signed["url"], "X-Amz-Expires", "604800")}
    assert put(longer, b"ab").status_code == 403
    assert put(signed, b"ab").status_code == 200


def test_server_refuses_a_url_signed_with_a_wrong_secret(
    local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", local_s3.credentials.secret_key + "x")
    assert put(sign(local_s3.bucket, key(), "--size", "2"), b"ab").status_code == 403


def test_server_refuses_an_expired_url(local_s3: LocalS3) -> None:
    signed = sign(
        local_s3.bucket, key(), "--size", "2", "--expires", "60", "--now", "2020-01-01T00:00:00Z"
    )
    response = put(signed, b"ab")
    assert response.status_code == 403


def test_server_refuses_a_put_to_a_get_url(local_s3: LocalS3) -> None:
    name = key()
    signed = sign(local_s3.bucket, name, "--method", "get")
    response = requests.put(signed["url"], data=b"ab", timeout=30)
    assert response.status_code == 403


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_output_uploads_a_file(local_s3: LocalS3, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(os.urandom(4096))
    name = key()
    result = CliRunner().invoke(
        app, ["sign", local_s3.bucket, name, "--file", str(path), "-o", "curl"]
    )
    assert result.exit_code == 0, result.stderr
    subprocess.run(["sh", "-c", result.stdout], check=True, capture_output=True, timeout=60)
    fetched = requests.get(sign(local_s3.bucket, name, "--method", "get")["url"], timeout=30)
    assert fetched.content == path.read_bytes()
    assert fetched.headers["Content-Type"] == "application/json"
    path.write_bytes(os.urandom(4096))  # same size, other bytes: the signed checksum refuses it
    failed = subprocess.run(
        ["sh", "-c", result.stdout], capture_output=True, timeout=60, check=False
    )
    assert failed.returncode != 0


def test_real_process_and_env_output(local_s3: LocalS3, tmp_path: Path) -> None:
    """``eval "$(s3sign sign ... -o env)"`` in a shell, then a PUT with the exported values."""
    name = key()
    body = tmp_path / "body.txt"
    body.write_text("from the shell\n")
    script = (
        f'eval "$({sys.executable} -m s3sign sign {local_s3.bucket} "$KEY" '
        '--file "$BODY" -o env)"\n'
        'curl -fsS -X "$S3SIGN_METHOD" -T "$BODY" '
        '-H "Content-Type: $S3SIGN_HEADER_CONTENT_TYPE" '
        '-H "x-amz-checksum-sha256: $S3SIGN_HEADER_X_AMZ_CHECKSUM_SHA256" "$S3SIGN_URL"\n'
    )
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {**os.environ, "KEY": name, "BODY": str(body)}
    done = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    fetched = requests.get(sign(local_s3.bucket, name, "--method", "get")["url"], timeout=30)
    assert fetched.text == "from the shell\n"


def test_doctor_passes_and_names_what_fails(
    local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = CliRunner().invoke(app, ["doctor", "--bucket", local_s3.bucket])
    assert good.exit_code == 0, good.stdout
    assert [line.split()[1] for line in good.stdout.splitlines() if not line.startswith(" ")] == [
        "credentials",
        "region",
        "endpoint",
        "bucket",
        "store",
    ]
    assert all(line.startswith("ok") for line in good.stdout.splitlines())
    rules = "enforces size, content type, SHA-256, Content-MD5, signature, If-None-Match;"
    assert f"store        {rules}" in good.stdout
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    bad = CliRunner().invoke(app, ["doctor", "--bucket", local_s3.bucket])
    assert bad.exit_code == 1
    assert "FAIL  bucket" in bad.stdout
    assert "SignatureDoesNotMatch" in bad.stdout
    assert "not-the-secret" not in bad.stdout
    missing = CliRunner().invoke(app, ["doctor", "--bucket", "no-such-bucket-here"])
    assert "FAIL" in missing.stdout


@contextmanager
def answering_with_a_clock(offset: timedelta) -> Iterator[str]:
    """An endpoint on 127.0.0.1 whose Date header is ``offset`` from this machine's clock."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def date_time_string(self, timestamp: float | None = None) -> str:  # the Date header
            return format_datetime(datetime.now(UTC) + offset, usegmt=True)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_names_a_skewed_clock_an_unreachable_endpoint_and_the_backend(
    backend: Backend,
) -> None:
    def doctor(*args: str) -> tuple[int, dict[str, str]]:
        done = CliRunner().invoke(app, ["doctor", *args])
        lines = [line.split(None, 2) for line in done.stdout.splitlines() if line[:1] != " "]
        return done.exit_code, {name: f"{status} {detail}" for status, name, detail in lines}

    with answering_with_a_clock(timedelta(minutes=-20)) as slow:
        code, checks = doctor("--endpoint-url", slow)
    assert code == 1
    assert checks["endpoint"].startswith("FAIL")
    assert re.search(r"this clock is 20m(\d+s)? ahead", checks["endpoint"])
    with answering_with_a_clock(timedelta(minutes=3)) as near:
        code, checks = doctor("--endpoint-url", near)
    assert code == 0
    assert checks["endpoint"].startswith("ok")
    assert re.search(r"this clock is (2m5\d+s|3m(\d+s)?) behind", checks["endpoint"])
    nowhere = f"http://127.0.0.1:{free_ports(1)[0]}"
    code, checks = doctor("--endpoint-url", nowhere)
    assert code == 1
    assert checks["endpoint"].startswith("FAIL")
    assert "unreachable" in checks["endpoint"]
    assert doctor("--backend", backend.url)[1]["backend"].startswith("ok")
    for wrong in (nowhere, backend.store.endpoint_url):  # down; not an s3sign backend
        code, checks = doctor("--backend", wrong)
        assert code == 1
        assert checks["backend"].startswith("FAIL")


def test_batch_urls_work_and_bind_like_single_ones(local_s3: LocalS3) -> None:
    bodies = {key(): os.urandom(1000 + n) for n in range(3)}
    requests_ = [
        {"bucket": local_s3.bucket, "key": name, "size": len(body), "sha256": b64sha256(body)}
        for name, body in bodies.items()
    ]
    source = "".join(json.dumps(request) + "\n" for request in requests_)
    result = CliRunner().invoke(app, ["sign", "--batch", "-"], input=source)
    assert result.exit_code == 0, result.stderr
    signed = [json.loads(line) for line in result.stdout.splitlines()]
    for document, body in zip(signed, bodies.values(), strict=True):
        assert put(document, body).status_code == 200
    wrong = put(signed[0], bytes(len(bodies[signed[0]["key"]])))  # same size, other bytes
    assert wrong.status_code == 400
    assert "BadDigest" in wrong.text or "Checksum" in wrong.text


def post_form(local_s3: LocalS3, key_: str, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["sign", local_s3.bucket, key_, "--post", *args])
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_post_policy_holds_size_type_and_key(local_s3: LocalS3) -> None:
    prefix = f"tests/{uuid.uuid4().hex}"
    limits = ("--max-size", "100", "--content-type", "text/plain")
    form = post_form(local_s3, f"{prefix}/a.txt", *limits)

    def post(body: bytes, **changes: str) -> requests.Response:
        fields = {**form["fields"], **changes}
        files = {"file": ("a.txt", body, "text/plain")}
        return requests.post(form["url"], data=fields, files=files, timeout=30)

    assert post(b"x" * 100).status_code == 204
    too_large = post(b"x" * 101)
    assert (too_large.status_code, "EntityTooLarge" in too_large.text) == (400, True)
    assert post(b"x", **{"Content-Type": "image/png"}).status_code == 403
    assert post(b"x", key=f"{prefix}/other.txt").status_code == 403
    get = sign(local_s3.bucket, f"{prefix}/a.txt", "--method", "get")
    assert requests.get(get["url"], timeout=30).content == b"x" * 100


def test_post_policy_with_filename_and_a_minimum(local_s3: LocalS3) -> None:
    prefix = f"tests/{uuid.uuid4().hex}"
    form = post_form(local_s3, prefix + "/${filename}", "--min-size", "10", "--max-size", "1KiB")
    for name, size, status in (("hello.txt", 20, 204), ("tiny.txt", 5, 400)):
        files = {"file": (name, b"y" * size)}
        response = requests.post(form["url"], data=form["fields"], files=files, timeout=30)
        assert response.status_code == status, response.text
    get = sign(local_s3.bucket, f"{prefix}/hello.txt", "--method", "get")
    assert requests.get(get["url"], timeout=30).content == b"y" * 20


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
def test_post_curl_output_uploads(local_s3: LocalS3, tmp_path: Path) -> None:
    name = f"tests/{uuid.uuid4().hex}/form.bin"
    result = CliRunner().invoke(
        app, ["sign", local_s3.bucket, name, "--post", "--max-size", "1MiB", "-o", "curl"]
    )
    assert result.exit_code == 0, result.stderr
    body = tmp_path / "FILE"
    body.write_bytes(os.urandom(5000))
    subprocess.run(["sh", "-c", result.stdout], cwd=tmp_path, check=True, timeout=60)
    get = sign(local_s3.bucket, name, "--method", "get")
    assert requests.get(get["url"], timeout=30).content == body.read_bytes()


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
def test_multipart_by_hand_with_curl(local_s3: LocalS3, tmp_path: Path) -> None:
    """40 MiB in three parts, each PUT with curl, completed, read back identical."""
    data = os.urandom(40 * 1024 * 1024)
    name = f"tests/{uuid.uuid4().hex}/big.bin"
    started = CliRunner().invoke(
        app,
        ["sign", local_s3.bucket, name, "--multipart", "--size", "40MiB", "--part-size", "16MiB"],
    )
    assert started.exit_code == 0, started.stderr
    plan = json.loads(started.stdout)
    assert [part["headers"]["Content-Length"] for part in plan["parts"]] == [
        str(16 * 1024 * 1024),
        str(16 * 1024 * 1024),
        str(8 * 1024 * 1024),
    ]
    lines = []
    for part in reversed(plan["parts"]):  # any order
        number, offset = part["partNumber"], (part["partNumber"] - 1) * plan["partSize"]
        piece = tmp_path / f"part-{number}"
        piece.write_bytes(data[offset : offset + int(part["headers"]["Content-Length"])])
        etag = subprocess.run(
            [
                "curl",
                "-fsS",
                "-o",
                "/dev/null",
                "-w",
                "%header{etag}",
                "-T",
                str(piece),
                part["url"],
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        lines.append(f"{number} {etag}")
    etags = tmp_path / "etags.txt"
    etags.write_text("\n".join(lines) + "\n")
    done = CliRunner().invoke(
        app, ["sign", local_s3.bucket, name, "--complete", plan["uploadId"], "--etags", str(etags)]
    )
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["etag"].endswith("-3")
    get = sign(local_s3.bucket, name, "--method", "get")
    assert requests.get(get["url"], timeout=60).content == data


def test_multipart_abort_and_refusals(local_s3: LocalS3) -> None:
    name = f"tests/{uuid.uuid4().hex}/aborted.bin"
    runner = CliRunner()
    plan = json.loads(
        runner.invoke(app, ["sign", local_s3.bucket, name, "--multipart", "--size", "6MiB"]).stdout
    )
    aborted = runner.invoke(app, ["sign", local_s3.bucket, name, "--abort", plan["uploadId"]])
    assert aborted.exit_code == 0, aborted.stderr
    part = plan["parts"][0]
    put_after_abort = requests.put(part["url"], data=b"x" * 6 * 1024 * 1024, timeout=30)
    assert put_after_abort.status_code == 404  # NoSuchUpload
    small = runner.invoke(
        app,
        ["sign", local_s3.bucket, name, "--multipart", "--size", "10MiB", "--part-size", "1MiB"],
    )
    assert small.exit_code == 2
    assert "under 5 MiB" in small.stderr
