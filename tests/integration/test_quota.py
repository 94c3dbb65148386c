"""Run quotas against the real `s3sign serve` and SeaweedFS: the file that would take a run
over the server's `max_run_files` / `max_run_bytes`, or its token's lower limits, is
refused on its own (`quota_exceeded`, push exit 1); a file sent again replaces itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3sign.local.seaweed import LocalS3
from s3sign.server.quotas import Quota
from s3sign.server.tokens import mint_token
from s3sign.transfer.api import push
from tests.integration.conftest import SECRET, Backend, running_backend

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def limited(local_s3: LocalS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """At most 4 files and 20 MiB per run; multipart from 5 MiB."""
    log = tmp_path_factory.mktemp("quota") / "serve.log"
    with running_backend(
        local_s3,
        log,
        multipart_threshold="5MiB",
        part_size="5MiB",
        max_run_files="4",
        max_run_bytes="20MiB",
    ) as running:
        yield running


def files(folder: Path, sizes: dict[str, int]) -> Path:
    folder.mkdir(parents=True)
    for name, size in sizes.items():
        (folder / name).write_bytes(name.encode()[:1] * size)
    return folder


def statuses(report: object) -> dict[str, str]:
    return {outcome.file_name: outcome.status for outcome in report.files}  # type: ignore[attr-defined]


def test_the_file_over_the_servers_file_limit_is_refused(limited: Backend, tmp_path: Path) -> None:
    run = f"quota-{uuid.uuid4().hex[:8]}"
    folder = files(tmp_path / "six", {f"{n}.txt": 10 for n in "abcdef"})
    token = mint_token(run, 600, SECRET.encode())[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env |= {"S3SIGN_BACKEND": limited.url, "S3SIGN_TOKEN": token, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "s3sign", "push", run, ".", "--json", "--concurrency", "1"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    by_status: dict[str, list[str]] = {}
    for entry in report["files"]:
        by_status.setdefault(entry["status"], []).append(entry["fileName"])
    assert sorted(by_status["uploaded"]) == ["a.txt", "b.txt", "c.txt", "d.txt"]  # in order
    assert sorted(by_status["failed"]) == ["e.txt", "f.txt"]
    for entry in report["files"]:
        if entry["status"] == "failed":
            assert "may hold 4 files" in entry["error"]
            assert entry["error"].endswith("(quota_exceeded)")

    again = push(run, ["a.txt", "b.txt"], base=folder, env=env)  # replacing takes no room
    assert again.status == "success"


def test_a_token_lowers_the_quota_and_cannot_raise_it(limited: Backend, tmp_path: Path) -> None:
    run = f"quota-{uuid.uuid4().hex[:8]}"
    lower = mint_token(run, 600, SECRET.encode(), quota=Quota(bytes=10_000))[0]
    env = {"S3SIGN_BACKEND": limited.url, "S3SIGN_TOKEN": lower, "HOME": str(tmp_path)}
    folder = files(tmp_path / "three", {"a.bin": 4000, "b.bin": 4000, "c.bin": 4000})
    report = push(run, ["a.bin", "b.bin", "c.bin"], base=folder, env=env)
    assert sorted(statuses(report).values()) == ["failed", "uploaded", "uploaded"]
    assert any("(quota_exceeded)" in (o.error or "") for o in report.files)

    run = f"quota-{uuid.uuid4().hex[:8]}"
    higher = mint_token(run, 600, SECRET.encode(), quota=Quota(bytes=10**12, files=100))[0]
    env |= {"S3SIGN_TOKEN": higher}
    big = files(tmp_path / "big", {"a.bin": 6 * MiB, "b.bin": 6 * MiB, "c.bin": 9 * MiB})
    report = push(run, ["a.bin", "b.bin", "c.bin"], base=big, env=env)
    # 21 MiB is over the server's 20 MiB, whatever the token says; multipart files count
    assert statuses(report) == {"a.bin": "uploaded", "b.bin": "uploaded", "c.bin": "failed"}
