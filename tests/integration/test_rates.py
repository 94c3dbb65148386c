"""Rate limits on the real `s3sign serve` over SeaweedFS: over a token's or a client's rate
the backend answers 429 with Retry-After, and push waits as told and goes on."""

from __future__ import annotations

import uuid
from pathlib import Path

import requests

from s3sign.local.seaweed import LocalS3
from s3sign.transfer.api import push
from tests.integration.conftest import running_backend


def test_over_its_rate_a_token_waits_as_told_and_the_push_goes_on(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    with running_backend(
        local_s3, tmp_path / "serve.log", token_rate="0.5", token_burst="1"
    ) as backend:
        run = f"rate-{uuid.uuid4().hex[:8]}"
        token = backend.token(run)
        body = {"files": [{"fileName": "a.txt", "fileSize": 1}]}
        assert backend.post(f"/v1/runs/{run}/uploads", body, token).status_code == 200
        refused = backend.post(f"/v1/runs/{run}/uploads", body, token)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["Retry-After"] == "2"
        other = backend.token(run)  # its own bucket
        assert backend.post(f"/v1/runs/{run}/uploads", body, other).status_code == 200

        folder = tmp_path / "files"
        folder.mkdir()
        for name in ("a.txt", "b.txt", "c.txt"):
            (folder / name).write_text(name)
        fresh = backend.token(run)
        env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_TOKEN": fresh, "HOME": str(tmp_path)}
        report = push(run, ["."], base=folder, env=env)  # create, then complete: 429, wait
        assert report.status == "success"
        assert report.counts == {"uploaded": 3}
        assert backend.metric("s3sign_refusals_total") >= 2  # rate_limited, at least twice


def test_over_its_rate_a_client_address_is_refused_before_its_token_is_read(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    with running_backend(
        local_s3, tmp_path / "serve.log", client_rate="0.2", client_burst="2"
    ) as backend:
        url = f"{backend.url}/v1/runs/r/uploads"
        answers = [
            requests.post(url, json={}, headers={"Authorization": "Bearer x"}, timeout=10)
            for _ in range(3)
        ]
        assert [answer.status_code for answer in answers] == [401, 401, 429]
        assert answers[2].headers["Retry-After"] == "5"
        assert requests.get(f"{backend.url}/healthz", timeout=10).status_code == 200
