"""The real ``s3sign serve`` process against a real S3 server: protocol v1 end to end."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from s3sign.local.seaweed import LocalS3
from s3sign.signing.store import ObjectStore
from tests.integration.conftest import SECRET, Backend, running_backend

pytestmark = pytest.mark.integration

SEED_REQUEST = {
    "files": [
        {"fileName": "log_12345.json", "fileSize": 1048576},
        {"fileName": "step_file_1.json", "fileSize": 2048000},
    ]
}


def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def put(upload: dict[str, Any], body: bytes) -> requests.Response:
    return requests.request(
        upload["method"], upload["url"], data=body, headers=upload["headers"], timeout=60
    )


def read_back(backend: Backend, key: str) -> requests.Response:
    """GET an object with the store's own credentials (not through the backend)."""
    from s3sign.signing.presign import SignRequest

    store = backend.store
    signed = store.presigner().sign(SignRequest(store.bucket, key, method="GET"))
    return requests.get(signed.url, timeout=60)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_seed_request_then_curl_puts_then_complete(backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    token = backend.token(run)
    bytes_before = backend.body_bytes_received()
    response = backend.post(f"/v1/runs/{run}/uploads", SEED_REQUEST, token)
    assert response.status_code == 200, response.text
    files = response.json()["files"]
    assert [f["key"] for f in files] == [
        f"runs/{run}/log_12345.json",
        f"runs/{run}/step_file_1.json",
    ]
    bodies = {}
    for spec, result in zip(SEED_REQUEST["files"], files, strict=True):
        assert result["status"] == "ready"
        upload = result["upload"]
        assert upload["url"].startswith(backend.store.endpoint_url)  # straight to S3
        assert upload["headers"]["Content-Length"] == str(spec["fileSize"])
        path = tmp_path / str(spec["fileName"])
        path.write_bytes(os.urandom(int(str(spec["fileSize"]))))
        bodies[result["key"]] = path.read_bytes()
        curl = ["curl", "-fsS", "-X", upload["method"], "-T", str(path), upload["url"]]
        for name, value in upload["headers"].items():
            if name != "Content-Length":
                curl[-1:-1] = ["-H", f"{name}: {value}"]
        subprocess.run(curl, check=True, capture_output=True, timeout=60)
    complete = backend.post(
        f"/v1/runs/{run}/uploads/complete",
        {
            "files": [
                {"key": f["key"], "fileSize": s["fileSize"]}
                for f, s in zip(files, SEED_REQUEST["files"], strict=True)
            ]
        },
        token,
    )
    assert complete.status_code == 200, complete.text
    assert [(f["status"], f["size"]) for f in complete.json()["files"]] == [
        ("complete", 1048576),
        ("complete", 2048000),
    ]
    for key, body in bodies.items():
        assert read_back(backend, key).content == body
    received = backend.body_bytes_received() - bytes_before
    assert received < 10_000, f"the backend received {received} bytes of request bodies"


def test_asking_again_gives_fresh_urls_for_the_same_keys(backend: Backend) -> None:
    run = run_id()
    token = backend.token(run)
    first = backend.post(f"/v1/runs/{run}/uploads", SEED_REQUEST, token).json()["files"]
    again = backend.post(f"/v1/runs/{run}/uploads", SEED_REQUEST, token).json()["files"]
    assert [f["key"] for f in first] == [f["key"] for f in again]


def test_checksum_and_content_type_are_bound(backend: Backend) -> None:
    run = run_id()
    body = b"checked body"
    sha = b64(hashlib.sha256(body).digest())
    request = {
        "files": [
            {"fileName": "a.txt", "fileSize": len(body), "sha256": sha, "contentType": "text/plain"}
        ]
    }
    upload = backend.post(f"/v1/runs/{run}/uploads", request, backend.token(run)).json()
    signed = upload["files"][0]["upload"]
    assert signed["headers"]["x-amz-checksum-sha256"] == sha
    assert signed["headers"]["Content-Type"] == "text/plain"
    assert put(signed, b"checked bodY").status_code == 400  # S3 itself refuses the digest
    assert put(signed, body).status_code == 200


def test_a_wrong_declared_size_deletes_only_the_workers_own_upload(backend: Backend) -> None:
    """complete deletes a mismatched object only with the ETag its PUT got: without one, or
    with another upload's, the stored object is kept and the answer says so."""
    run = run_id()
    token = backend.token(run)
    result = backend.post(
        f"/v1/runs/{run}/uploads", {"files": [{"fileName": "x.bin", "fileSize": 10}]}, token
    ).json()["files"][0]
    response = put(result["upload"], b"0123456789")
    assert response.status_code == 200

    def complete(**extra: str) -> dict[str, Any]:
        item = {"key": result["key"], "fileSize": 11, **extra}
        answer = backend.post(f"/v1/runs/{run}/uploads/complete", {"files": [item]}, token)
        return dict(answer.json()["files"][0])

    for extra in ({}, {"etag": '"' + "0" * 32 + '"'}):
        kept = complete(**extra)
        assert (kept["status"], kept["error"]["code"]) == ("failed", "size_mismatch")
        assert "kept" in kept["error"]["message"]
        assert read_back(backend, result["key"]).content == b"0123456789"
    deleted = complete(etag=response.headers["ETag"])
    assert (deleted["status"], deleted["error"]["code"]) == ("failed", "size_mismatch")
    assert "your upload was deleted" in deleted["error"]["message"]
    assert read_back(backend, result["key"]).status_code == 404
    missing = backend.post(
        f"/v1/runs/{run}/uploads/complete",
        {"files": [{"key": f"runs/{run}/never-uploaded", "fileSize": 1}]},
        token,
    ).json()["files"][0]
    assert (missing["status"], missing["error"]["code"]) == ("failed", "not_found")


@pytest.mark.parametrize("bound", [False, True], ids=["length-only", "sha256-bound"])
def test_multipart_upload_reads_back_identical(
    backend: Backend, tmp_path: Path, bound: bool
) -> None:
    """Parts bound to their length (any v1 client), or also to their SHA-256 (partChecksum):
    then S3 refuses a part whose body differs, and the object carries the composite SHA-256."""
    run = run_id()
    token = backend.token(run)
    size = 100 * 1024 * 1024 + 12345
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        for _ in range(size // (1024 * 1024)):
            handle.write(os.urandom(1024 * 1024))
        handle.write(os.urandom(size % (1024 * 1024)))
    spec: dict[str, Any] = {"fileName": "big.bin", "fileSize": size}
    if bound:
        spec["partChecksum"] = "sha256"
    result = backend.post(f"/v1/runs/{run}/uploads", {"files": [spec]}, token).json()["files"][0]
    plan = result["multipart"]
    assert plan["partSize"] == 16 * 1024 * 1024
    assert plan["partCount"] == 7
    assert plan.get("partChecksum") == ("sha256" if bound else None)
    chunks = [path.read_bytes()[i : i + plan["partSize"]] for i in range(0, size, plan["partSize"])]
    digests = [b64(hashlib.sha256(chunk).digest()) for chunk in chunks]
    request: dict[str, Any] = {
        "key": result["key"],
        "uploadId": plan["uploadId"],
        "fileSize": size,
        "partNumbers": list(range(1, plan["partCount"] + 1)),
    }
    if bound:
        request["sha256"] = digests
    parts = backend.post(f"/v1/runs/{run}/uploads/parts", request, token)
    assert parts.status_code == 200, parts.text
    etags = []
    for part, chunk, digest in zip(parts.json()["parts"], chunks, digests, strict=True):
        assert part["headers"]["Content-Length"] == str(len(chunk))
        if bound:
            assert part["headers"]["x-amz-checksum-sha256"] == digest
            tampered = bytes([chunk[0] ^ 0xFF]) + chunk[1:]  # never equal to chunk
            assert put(part, tampered).status_code == 400  # BadDigest: S3 itself refuses it
            forged = dict(
                part,
                headers={
                    **part["headers"],
                    "x-amz-checksum-sha256": b64(hashlib.sha256(tampered).digest()),
                },
            )
            assert put(forged, tampered).status_code == 403  # the digest is signed
        response = put(part, chunk)
        assert response.status_code == 200, response.text
        etag = {"partNumber": part["partNumber"], "etag": response.headers["ETag"]}
        etags.append({**etag, "sha256": digest} if bound else etag)

    def complete(parts: list[dict[str, Any]]) -> dict[str, Any]:
        item = {"key": result["key"], "fileSize": size, "uploadId": plan["uploadId"]}
        answer = backend.post(
            f"/v1/runs/{run}/uploads/complete", {"files": [{**item, "parts": parts}]}, token
        )
        return dict(answer.json()["files"][0])

    if bound:  # the parts declared at completion must be the ones S3 checked
        refused = complete([{**etags[0], "sha256": digests[1]}, *etags[1:]])
        assert refused["status"] == "failed", refused
        assert read_back(backend, result["key"]).status_code == 404
    done = complete(etags)
    assert done["status"] == "complete", done
    assert done["size"] == size
    fetched = read_back(backend, result["key"])
    assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(path.read_bytes()).digest()
    stored = ObjectStore(backend.store.presigner, backend.store.bucket).head(result["key"])
    assert stored is not None
    if bound:  # S3's composite checksum: the SHA-256 of the parts' SHA-256s, also in complete's
        joined = b"".join(hashlib.sha256(chunk).digest() for chunk in chunks)
        composite = f"{b64(hashlib.sha256(joined).digest())}-{len(chunks)}"
        assert stored.checksum == done["partsSha256"] == composite
    else:
        assert stored.checksum is None
        assert "partsSha256" not in done


def test_part_digests_are_checked(backend: Backend) -> None:
    run = run_id()
    token = backend.token(run)
    size = 200 * 1024 * 1024
    spec = {"fileName": "big.bin", "fileSize": size, "partChecksum": "sha256"}
    result = backend.post(f"/v1/runs/{run}/uploads", {"files": [spec]}, token).json()["files"][0]
    base = {"key": result["key"], "uploadId": result["multipart"]["uploadId"], "fileSize": size}
    digest = b64(hashlib.sha256(b"part").digest())
    for extra in (
        {"partNumbers": [1, 2], "sha256": [digest]},  # one digest per part
        {"partNumbers": [1], "sha256": ["not base64"]},
        {"partNumbers": [1], "md5": [digest]},  # 32 bytes is no MD5
    ):
        answer = backend.post(f"/v1/runs/{run}/uploads/parts", {**base, **extra}, token)
        assert answer.status_code == 422, extra
        assert answer.json()["error"]["code"] == "invalid_checksum"
    complete = backend.post(
        f"/v1/runs/{run}/uploads/complete",
        {"files": [{**base, "parts": [{"partNumber": 1, "etag": "e", "sha256": "nope"}]}]},
        token,
    ).json()["files"][0]
    assert (complete["status"], complete["error"]["code"]) == ("failed", "invalid_checksum")


def test_abort_frees_a_multipart_upload(backend: Backend) -> None:
    run = run_id()
    token = backend.token(run)
    size = 200 * 1024 * 1024
    result = backend.post(
        f"/v1/runs/{run}/uploads", {"files": [{"fileName": "big.bin", "fileSize": size}]}, token
    ).json()["files"][0]
    upload_id = result["multipart"]["uploadId"]
    aborted = backend.post(
        f"/v1/runs/{run}/uploads/abort", {"key": result["key"], "uploadId": upload_id}, token
    )
    assert aborted.json() == {"key": result["key"], "status": "aborted"}
    parts = backend.post(
        f"/v1/runs/{run}/uploads/parts",
        {"key": result["key"], "uploadId": upload_id, "fileSize": size, "partNumbers": [1]},
        token,
    ).json()["parts"]
    assert put(parts[0], b"x" * 16 * 1024 * 1024).status_code == 404  # NoSuchUpload


# --- refusals: the server's answer, and nothing signed ------------------------------------


def test_token_refusals(backend: Backend) -> None:
    run, other = run_id(), run_id()
    path = f"/v1/runs/{run}/uploads"
    cases: list[tuple[str | None, int, str]] = [
        (None, 401, "missing_token"),
        (backend.token(other), 403, "wrong_run"),
        (backend.token(run)[:-3] + "abc", 401, "invalid_token"),
        ("not.a.jwt", 401, "invalid_token"),
    ]
    from datetime import UTC, datetime, timedelta

    from s3sign.server.tokens import mint_token

    expired, _ = mint_token(run, 60, SECRET.encode(), datetime.now(UTC) - timedelta(hours=2))
    wrong_secret, _ = mint_token(run, 3600, b"another-secret-that-is-long-enough!!")
    cases += [(expired, 401, "token_expired"), (wrong_secret, 401, "invalid_token")]
    for token, status, code in cases:
        response = backend.post(path, SEED_REQUEST, token)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), token
        assert "url" not in response.text


@pytest.mark.parametrize(
    ("file_name", "code"),
    [
        ("../x", "invalid_name"),
        ("/abs", "invalid_name"),
        ("a//b", "invalid_name"),
        ("a\\b", "invalid_name"),
        ("a\x01b", "invalid_name"),
        ("tab\there", "invalid_name"),
        ("x" * 2000, "name_too_long"),
        ("", "invalid_name"),
        ("a/./b", "invalid_name"),
    ],
)
def test_bad_names_are_rejected_per_file(backend: Backend, file_name: str, code: str) -> None:
    run = run_id()
    request = {"files": [{"fileName": file_name, "fileSize": 1}, {"fileName": "ok", "fileSize": 1}]}
    response = backend.post(f"/v1/runs/{run}/uploads", request, backend.token(run))
    assert response.status_code == 200
    bad, good = response.json()["files"]
    assert bad["status"] == "rejected"
    assert bad["error"]["code"] == code
    assert "upload" not in bad
    assert "key" not in bad
    assert good["status"] == "ready"


def test_bad_sizes_and_duplicates(backend: Backend) -> None:
    run = run_id()
    token = backend.token(run)
    per_file = backend.post(
        f"/v1/runs/{run}/uploads",
        {
            "files": [
                {"fileName": "neg", "fileSize": -1},
                {"fileName": "huge", "fileSize": 2 * 1024**3},
                {"fileName": "dup", "fileSize": 1},
                {"fileName": "dup", "fileSize": 1},
                {"fileName": "sum", "fileSize": 1, "sha256": "nope"},
            ]
        },
        token,
    ).json()["files"]
    assert [(f["status"], f.get("error", {}).get("code")) for f in per_file] == [
        ("rejected", "invalid_size"),
        ("rejected", "too_large"),
        ("ready", None),
        ("rejected", "duplicate_name"),
        ("rejected", "invalid_checksum"),
    ]
    for size in ("12", 1e30, None, True):
        response = backend.post(
            f"/v1/runs/{run}/uploads", {"files": [{"fileName": "a", "fileSize": size}]}, token
        )
        assert response.status_code == 422, size
        assert response.json()["error"]["code"] == "invalid_request"


def test_malformed_bodies(backend: Backend) -> None:
    run = run_id()
    token = backend.token(run)
    url = f"{backend.url}/v1/runs/{run}/uploads"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(data: bytes) -> tuple[int, str]:
        response = requests.post(url, data=data, headers=headers, timeout=60)
        return response.status_code, response.json()["error"]["code"]

    assert post(b'{"files": [') == (400, "invalid_json")
    assert post(b"[]") == (422, "invalid_request")
    assert post(b'{"files": []}') == (422, "invalid_request")
    assert post(b" " * (2 * 1024 * 1024)) == (413, "body_too_large")
    many = {"files": [{"fileName": f"f{i}", "fileSize": 1} for i in range(10_001)]}
    response = backend.post(f"/v1/runs/{run}/uploads", many, token)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "too_many_files")


def test_other_endpoints_refuse_keys_outside_the_run(backend: Backend) -> None:
    run = run_id()
    token = backend.token(run)
    outside = f"runs/{run_id()}/x"
    for path, body in [
        ("parts", {"key": outside, "uploadId": "u", "fileSize": 200 * 1024**2, "partNumbers": [1]}),
        ("complete", {"files": [{"key": outside, "fileSize": 1}]}),
        ("abort", {"key": outside, "uploadId": "u"}),
        ("complete", {"files": [{"key": f"runs/{run}/../x", "fileSize": 1}]}),
    ]:
        response = backend.post(f"/v1/runs/{run}/uploads/{path}", body, token)
        assert response.status_code in (403, 422), (path, response.text)
        assert response.json()["error"]["code"] in ("key_outside_run", "invalid_name")


def test_health_ready_openapi_and_docs(backend: Backend) -> None:
    assert requests.get(f"{backend.url}/healthz", timeout=10).json()["status"] == "ok"
    assert requests.get(f"{backend.url}/readyz", timeout=10).json() == {"status": "ready"}
    spec = requests.get(f"{backend.url}/openapi.json", timeout=10).json()
    body = spec["paths"]["/v1/runs/{run_id}/uploads"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("CreateUploadsRequest")
    assert spec["components"]["schemas"]["FileSpec"]["required"] == ["fileName", "fileSize"]
    status = spec["paths"]["/v1/runs/{run_id}/uploads/status"]["post"]["requestBody"]
    assert status["content"]["application/json"]["schema"]["$ref"].endswith("StatusRequest")
    assert "missing" in str(spec["components"]["schemas"]["StatusResult"])
    info = spec["paths"]["/v1/info"]["get"]["responses"]["200"]["content"]["application/json"]
    assert info["schema"]["$ref"].endswith("ServerInfo")
    assert "etagIsMd5" in str(spec["components"]["schemas"]["StoreChecks"])
    assert requests.get(f"{backend.url}/docs", timeout=10).status_code == 200
    missing = requests.get(f"{backend.url}/nope", timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_access_log_has_no_tokens_or_query_strings(backend: Backend) -> None:
    run = run_id()
    token = backend.token(run)
    requests.post(
        f"{backend.url}/v1/runs/{run}/uploads?token=sekrit-query",
        json=SEED_REQUEST,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    log = backend.log.read_text()
    assert f"/v1/runs/{run}/uploads" in log
    assert "sekrit-query" not in log
    assert token not in log
    assert "X-Amz-Signature" not in log


def test_sigterm_stops_serve_cleanly(local_s3: Any, tmp_path: Path) -> None:
    from s3sign.local.seaweed import free_ports

    port = free_ports(1)[0]
    env = {
        **os.environ,
        "S3SIGN_SERVER_SECRET": SECRET,
        "AWS_ACCESS_KEY_ID": local_s3.credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": local_s3.credentials.secret_key,
        "AWS_REGION": "us-east-1",
        "S3SIGN_ENDPOINT_URL": local_s3.endpoint_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "s3sign", "serve", "--bucket", local_s3.bucket, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal: exit by SIGTERM, as expected
    assert process.returncode in (0, -signal.SIGTERM), output.decode()
    assert b"Application shutdown complete" in output
    assert b"Traceback" not in output


def test_serve_without_secret_or_bucket_is_a_clear_error(local_s3: Any) -> None:
    base = {key: value for key, value in os.environ.items() if not key.startswith("S3SIGN_")}
    no_secret = subprocess.run(
        [sys.executable, "-m", "s3sign", "serve", "--bucket", "b-1"],
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_secret.returncode == 3
    assert "S3SIGN_SERVER_SECRET is not set" in no_secret.stderr
    no_bucket = subprocess.run(
        [sys.executable, "-m", "s3sign", "serve"],
        env={**base, "S3SIGN_SERVER_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_bucket.returncode == 3
    assert "needs a bucket" in no_bucket.stderr


def uploaded(backend: Backend, run: str, token: str, names: list[str], body: bytes) -> list[Any]:
    """Ask for the files' URLs, PUT ``body`` to each; the backend's answers."""
    created: list[Any] = backend.post(
        f"/v1/runs/{run}/uploads",
        {"files": [{"fileName": name, "fileSize": len(body)} for name in names]},
        token,
    ).json()["files"]
    for result in created:
        response = put(result["upload"], body)
        assert response.status_code == 200
        result["putEtag"] = response.headers["ETag"]
    return created


def test_complete_of_many_files_uses_a_listing_and_still_checks_each(backend: Backend) -> None:
    """25 files: one never uploaded, one with a wrong declared size; the rest verified."""
    run = run_id()
    token = backend.token(run)
    created = uploaded(backend, run, token, [f"many/{i:02}.txt" for i in range(1, 25)], b"abc")
    never = backend.post(
        f"/v1/runs/{run}/uploads", {"files": [{"fileName": "many/00.txt", "fileSize": 3}]}, token
    ).json()["files"]
    created = never + created
    declared = [{"key": f["key"], "fileSize": 3} for f in created]
    declared[5].update(fileSize=4, etag=created[5]["putEtag"])  # its own upload: deleted
    answer = backend.post(f"/v1/runs/{run}/uploads/complete", {"files": declared}, token).json()
    statuses = [(f["status"], f.get("error", {}).get("code")) for f in answer["files"]]
    assert statuses[0] == ("failed", "not_found")
    assert statuses[5] == ("failed", "size_mismatch")
    assert statuses.count(("complete", None)) == 23
    assert all(f["size"] == 3 for f in answer["files"] if f["status"] == "complete")
    assert read_back(backend, created[5]["key"]).status_code == 404


def test_complete_of_every_other_file_lists_past_the_others(backend: Backend) -> None:
    """The run holds objects between the batch's keys: each batch file is still verified."""
    run = run_id()
    token = backend.token(run)
    created = uploaded(backend, run, token, [f"mixed/{i:02}.txt" for i in range(50)], b"ok")
    declared = [{"key": f["key"], "fileSize": 2} for f in created[::2]]
    declared[-1]["fileSize"] = 3
    answer = backend.post(f"/v1/runs/{run}/uploads/complete", {"files": declared}, token).json()
    statuses = [(f["status"], f.get("error", {}).get("code")) for f in answer["files"]]
    assert statuses[:-1] == [("complete", None)] * 24
    assert statuses[-1] == ("failed", "size_mismatch")


def test_readyz_asks_the_store_at_most_every_few_seconds_and_answers_fast(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    """/readyz needs no token: polling it must not turn into one store call each, and a store
    that never answers must not hold it. The probe stays under the server's prefix."""
    import socket
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    probes: list[str] = []

    class Store(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            probes.append(self.path.split("?", 1)[0])
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_HEAD = do_DELETE = do_GET  # the store check at start: refused

        def log_message(self, *args: object) -> None:
            pass

    counting = ThreadingHTTPServer(("127.0.0.1", 0), Store)
    threading.Thread(target=counting.serve_forever, daemon=True).start()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        endpoint = f"http://127.0.0.1:{counting.server_address[1]}"
        with running_backend(local_s3, tmp_path / "a.log", endpoint_url=endpoint) as backend:
            probes.clear()
            for _ in range(20):
                assert requests.get(f"{backend.url}/readyz", timeout=10).status_code == 200
            readyz = [path for path in probes if path.endswith("/readyz")]
            assert readyz == [f"/{local_s3.bucket}/runs/.s3sign/readyz"]
        nowhere = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with running_backend(local_s3, tmp_path / "b.log", endpoint_url=nowhere) as backend:
            started = time.monotonic()
            answer = requests.get(f"{backend.url}/readyz", timeout=30)
            assert answer.status_code == 503
            assert time.monotonic() - started < 8
    finally:
        counting.shutdown()
        counting.server_close()
        silent.close()
