"""The audit log and /metrics of the real `s3sign serve`, with two worker processes, over
SeaweedFS: one JSON line per decision and no secret in any; /metrics sums every worker;
--log-format json makes the other logs JSON too."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import requests

from s3sign.local.seaweed import LocalS3
from tests.integration.conftest import SECRET, running_backend

SHA256 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="  # of b"abc"


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_decision_is_one_audit_line_and_metrics_sum_the_workers(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    audit, folder = tmp_path / "audit.jsonl", tmp_path / "metrics"
    folder.mkdir()
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    with running_backend(
        local_s3,
        tmp_path / "serve.log",
        environ=environ,
        workers="2",
        audit_log=str(audit),
        log_format="json",
    ) as backend:
        run = f"audit-{uuid.uuid4().hex[:8]}"
        token = backend.token(run)
        files = [
            {"fileName": "a.txt", "fileSize": 3, "sha256": SHA256},
            {"fileName": "b.txt", "fileSize": 5},
            {"fileName": "../escape", "fileSize": 1},
        ]
        answer = backend.post(f"/v1/runs/{run}/uploads", {"files": files}, token)
        assert answer.status_code == 200
        created = lines(audit)
        assert len(created) == 3  # one per file
        assert [line["result"] for line in created] == ["ready", "ready", "rejected"]
        first = created[0]
        assert first["action"] == "create_uploads"
        assert first["run"] == run
        assert first["subject"] == run
        assert isinstance(first["jti"], str)
        assert first["client"] == "127.0.0.1"
        assert first["key"] == f"runs/{run}/a.txt"
        assert first["size"] == 3
        assert first["checksum"] == f"sha256:{SHA256}"
        assert created[2]["file"] == "../escape"
        assert created[2]["code"] == "invalid_name"

        refused = backend.post(f"/v1/runs/{run}/uploads", {"files": files[:1]}, "not-a-token")
        assert refused.status_code == 401
        [line] = lines(audit)[3:]
        assert (line["result"], line["code"], line["action"]) == (
            "refused",
            "invalid_token",
            "create_uploads",
        )
        text = audit.read_text()
        url = answer.json()["files"][0]["upload"]["url"]
        for secret in (token, "not-a-token", SECRET, url, "X-Amz-Signature", "Credential"):
            assert secret not in text

        before = backend.metric("s3sign_requests_total")
        for _ in range(40):  # a new connection each: the workers share them out
            requests.get(f"{backend.url}/healthz", timeout=10)
        after = backend.metric("s3sign_requests_total")
        assert after - before == 41  # the 40, and the /metrics call before them
        counters = {path.name for path in folder.iterdir() if path.name.startswith("counter_")}
        assert len(counters) >= 2, counters  # more than one process counted
        assert backend.metric("s3sign_urls_signed_total") == 2
        assert backend.metric("s3sign_bytes_declared_total") == 8
        assert backend.metric("s3sign_refusals_total") == 2  # invalid_name, invalid_token
    log = (tmp_path / "serve.log").read_text().splitlines()
    assert log
    for entry in log:
        assert isinstance(json.loads(entry), dict), entry
