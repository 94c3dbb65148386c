"""Sealed runs against two real `s3sign serve` replicas and SeaweedFS: once sealed, no
replica signs an upload, an overwrite, a part, a completion or an abort for the run,
whatever token is shown; reading goes on; the seal is an object no file can name."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from s3sign.http.transport import Transport
from s3sign.local.seaweed import LocalS3
from s3sign.server.tokens import mint_token
from s3sign.signing.store import ObjectStore
from s3sign.transfer.api import push
from tests.integration.conftest import SECRET, Backend, running_backend

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def replicas(
    local_s3: LocalS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Backend, Backend]]:
    """Two replicas of one backend (one secret, one store), each trusting "not sealed" for
    1 s, with multipart from 5 MiB."""
    logs = tmp_path_factory.mktemp("seal-replicas")

    def replica(name: str) -> Any:
        log = logs / f"{name}.log"
        return running_backend(
            local_s3, log, multipart_threshold="5MiB", part_size="5MiB", seal_cache="1s"
        )

    with replica("one") as one, replica("two") as two:
        yield one, two


def token(run: str, *scopes: str) -> str:
    return mint_token(run, 600, SECRET.encode(), scopes=scopes or ("upload",))[0]


def s3sign(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    return subprocess.run(
        [sys.executable, "-m", "s3sign", *args],
        cwd=cwd,
        env=clean | {"AWS_EC2_METADATA_DISABLED": "true"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def code(answer: requests.Response) -> tuple[int, str]:
    error: dict[str, str] = answer.json().get("error", {})
    return answer.status_code, error.get("code", "")


def test_a_sealed_run_takes_no_more_writes_on_any_replica(
    replicas: tuple[Backend, Backend], tmp_path: Path
) -> None:
    one, two = replicas
    run = f"seal-{uuid.uuid4().hex[:8]}"
    upload = token(run)
    (tmp_path / "a.txt").write_bytes(b"kept\n")
    env = {"S3SIGN_BACKEND": one.url, "S3SIGN_TOKEN": upload, "HOME": "/"}
    assert push(run, ["a.txt"], base=tmp_path, env=env).status == "success"
    new_file = {"files": [{"fileName": "b.txt", "fileSize": 1}]}
    assert two.post(f"/v1/runs/{run}/uploads", new_file, upload).status_code == 200  # open
    created = one.post(
        f"/v1/runs/{run}/uploads", {"files": [{"fileName": "big.bin", "fileSize": 6 * MiB}]}, upload
    ).json()["files"][0]
    handle = {"key": created["key"], "uploadId": created["multipart"]["uploadId"]}
    objects = ObjectStore(one.store.presigner, one.store.bucket, Transport())
    assert [key for key, _ in objects.open_uploads(f"runs/{run}/")] == [created["key"]]

    wrong = one.post(f"/v1/runs/{run}/seal", {}, upload)  # an upload token cannot seal
    assert code(wrong) == (403, "wrong_scope")
    sealed = s3sign("seal", run, env={"S3SIGN_BACKEND": one.url, "S3SIGN_SERVER_SECRET": SECRET})
    assert sealed.returncode == 0, sealed.stderr
    assert f"run {run} sealed at" in sealed.stderr

    overwrite = {"files": [{"fileName": "a.txt", "fileSize": 5}]}
    for body in (new_file, overwrite):
        assert code(one.post(f"/v1/runs/{run}/uploads", body, upload)) == (403, "run_sealed")
    parts = handle | {"fileSize": 6 * MiB, "partNumbers": [1]}
    assert code(one.post(f"/v1/runs/{run}/uploads/parts", parts, upload)) == (403, "run_sealed")
    complete = {"files": [handle | {"fileSize": 6 * MiB, "parts": []}]}
    answer = one.post(f"/v1/runs/{run}/uploads/complete", complete, upload)
    assert code(answer) == (403, "run_sealed")
    assert code(one.post(f"/v1/runs/{run}/uploads/abort", handle, upload)) == (403, "run_sealed")
    assert objects.open_uploads(f"runs/{run}/") == []  # the seal aborted big.bin's upload
    time.sleep(1.2)  # the other replica's "open" is older than its seal_cache
    assert code(two.post(f"/v1/runs/{run}/uploads", new_file, upload)) == (403, "run_sealed")

    again = s3sign("push", run, "a.txt", env=env | {"HOME": str(tmp_path)}, cwd=tmp_path)
    assert again.returncode == 4, again.stderr
    assert "run_sealed" in again.stderr
    assert "push into a new run" in again.stderr

    reader = token(run, "read")
    listed = requests.get(
        f"{two.url}/v1/runs/{run}/files",
        headers={"Authorization": f"Bearer {reader}"},
        timeout=30,
    )
    assert [f["fileName"] for f in listed.json()["files"]] == ["a.txt"]  # not the seal
    seal_token = token(run, "seal")
    first = one.post(f"/v1/runs/{run}/seal", {}, seal_token).json()
    assert two.post(f"/v1/runs/{run}/seal", {}, seal_token).json() == first  # once
    assert code(two.post(f"/v1/runs/{run}/uploads", new_file, seal_token)) == (403, "wrong_scope")


def test_no_file_can_take_the_seals_name(replicas: tuple[Backend, Backend]) -> None:
    one, _ = replicas
    run = f"seal-{uuid.uuid4().hex[:8]}"
    body = {"files": [{"fileName": ".s3sign/sealed", "fileSize": 1}]}
    [result] = one.post(f"/v1/runs/{run}/uploads", body, token(run)).json()["files"]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "reserved_name"
