"""Key rotation and revocation on real `s3sign serve` replicas over SeaweedFS: during a
rotation (S3SIGN_SERVER_SECRETS=new,old) a token and an upload handle of the old secret
still work, and fail once the old secret is dropped; a revoked token is refused by every
replica (the one it was revoked on at once, the others within revocation_cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jwt
import requests

from s3sign.local.seaweed import LocalS3
from s3sign.server.tokens import mint_link, mint_token
from tests.integration.conftest import SECRET, Backend, running_backend

MiB = 1024 * 1024
NEW = "the-new-secret-of-the-rotation-" + "n" * 20


def s3sign(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    return subprocess.run(
        [sys.executable, "-m", "s3sign", *args],
        env=clean | {"AWS_EC2_METADATA_DISABLED": "true", "HOME": "/"} | env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def code(answer: requests.Response) -> tuple[int, str]:
    return answer.status_code, answer.json().get("error", {}).get("code", "")


def create(backend: Backend, run: str, token: str, size: int = 3) -> requests.Response:
    body = {"files": [{"fileName": f"f{size}.bin", "fileSize": size}]}
    return backend.post(f"/v1/runs/{run}/uploads", body, token)


def test_a_rotation_keeps_running_jobs_and_ends_the_old_secret(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    both = {"S3SIGN_SERVER_SECRET": "", "S3SIGN_SERVER_SECRETS": f"{NEW},{SECRET}"}
    small_parts = {"S3SIGN_MULTIPART_THRESHOLD": "5MiB", "S3SIGN_PART_SIZE": "5MiB"}
    only_new = {"S3SIGN_SERVER_SECRET": NEW} | small_parts
    with (
        running_backend(local_s3, tmp_path / "old.log", environ=small_parts) as old,
        running_backend(local_s3, tmp_path / "both.log", environ=both | small_parts) as rotating,
        running_backend(local_s3, tmp_path / "new.log", environ=only_new) as new,
    ):
        run = f"rot-{uuid.uuid4().hex[:8]}"
        before = mint_token(run, 600, SECRET.encode())[0]  # a job running since before
        [created] = create(old, run, before, 6 * MiB).json()["files"]
        key, handle = created["key"], created["multipart"]["uploadId"]
        parts_body = {"key": key, "uploadId": handle, "fileSize": 6 * MiB, "partNumbers": [1, 2]}
        answer = rotating.post(f"/v1/runs/{run}/uploads/parts", parts_body, before)
        assert answer.status_code == 200, answer.text
        etags = []
        for part, length in zip(answer.json()["parts"], (5 * MiB, MiB), strict=True):
            put = requests.put(part["url"], data=b"r" * length, headers=part["headers"], timeout=60)
            etags.append({"partNumber": part["partNumber"], "etag": put.headers["etag"]})
        complete = {
            "files": [{"key": key, "uploadId": handle, "fileSize": 6 * MiB, "parts": etags}]
        }
        [done] = rotating.post(f"/v1/runs/{run}/uploads/complete", complete, before).json()["files"]
        assert done["status"] == "complete"

        minted = s3sign("token", run, env=both)  # the first secret mints
        assert minted.returncode == 0, minted.stderr
        after = minted.stdout.strip()
        assert create(rotating, run, after).status_code == 200
        assert create(new, run, after).status_code == 200
        assert code(create(old, run, after)) == (401, "invalid_token")
        # The old secret dropped: its tokens are refused
        refused = create(new, run, before)
        assert code(refused) == (401, "invalid_token")
        assert "secret this server does not have" in refused.json()["error"]["message"]


def test_a_revoked_token_is_refused_by_every_replica(local_s3: LocalS3, tmp_path: Path) -> None:
    with (
        running_backend(local_s3, tmp_path / "one.log", revocation_cache="1s") as one,
        running_backend(local_s3, tmp_path / "two.log", revocation_cache="1s") as two,
    ):
        run = f"rev-{uuid.uuid4().hex[:8]}"
        leaked, kept = (mint_token(run, 600, SECRET.encode())[0] for _ in range(2))
        for replica in (one, two):
            assert create(replica, run, leaked).status_code == 200

        not_an_operator = requests.post(
            f"{one.url}/v1/revocations",
            json={"jti": "x"},
            headers={"Authorization": f"Bearer {kept}"},
            timeout=10,
        )
        assert code(not_an_operator) == (403, "wrong_scope")
        revoked = s3sign(
            "revoke", "-", "--backend", one.url, env={"S3SIGN_SERVER_SECRET": SECRET}, stdin=leaked
        )
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked on every replica until" in revoked.stderr
        assert leaked not in revoked.stderr + revoked.stdout

        assert code(create(one, run, leaked)) == (401, "token_revoked")  # at once
        time.sleep(1.2)  # the other replica's list is older than its revocation_cache
        assert code(create(two, run, leaked)) == (401, "token_revoked")
        assert create(two, run, kept).status_code == 200  # only that token

        link, _ = mint_link(run, "f3.bin", 600, SECRET.encode())
        path = f"/v1/runs/{run}/files/f3.bin?token={link}"
        first = requests.get(one.url + path, allow_redirects=False, timeout=10)
        assert first.status_code == 404  # not revoked: the file is just not there
        jti = jwt.decode(link, options={"verify_signature": False})["jti"]
        by_id = s3sign("revoke", jti, "--backend", two.url, env={"S3SIGN_SERVER_SECRET": SECRET})
        assert by_id.returncode == 0, by_id.stderr
        answer = requests.get(two.url + path, allow_redirects=False, timeout=10)
        assert code(answer) == (401, "token_revoked")
