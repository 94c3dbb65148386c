"""A hostile peer, as S3 and as the backend: push ends in its bound, small, and says why.

Each case runs the real ``s3sign push`` (capped: tests/reliability/capped_push.py)
with ``S3SIGN_STALL_TIMEOUT=3s``. As S3, the hostile peer is the worker's
``http_proxy`` (the backend, the real ``serve`` on SeaweedFS, is exempt through
``no_proxy``), so that every PUT gets the bad answer; as the backend, it answers
every protocol call. The bound: the attempts' stall deadlines plus their backoff.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import Backend
from tests.reliability.conftest import MODE
from tests.reliability.hostile import MODES, HostilePeer

STALL = 3  # seconds: S3SIGN_STALL_TIMEOUT for these pushes
BOUND = 60.0  # seconds: 5 attempts x 3 s, the backoff between them (< 20 s), start-up
MAX_RSS_KIB = 100 * 1024
ROOT = Path(__file__).resolve().parents[2]
WHY = {
    "chunked-forever": "an answer of over",
    "huge-length": "an answer of over",
    "to-close-flood": "an answer of over",
    "continue-flood": "more than 8 interim (1xx) answers",
    "dribble": f"no whole answer within {STALL} s",
    "endless-chunk-line": "a chunk-size or trailer line over 4096 bytes",
    "negative-length": "bad Content-Length '-1'",
    "header-flood": "headers are too long",
}
# CI runs the modes that once ate memory or time for both roles; S3SIGN_RELIABILITY=full all.
SHORT = {"chunked-forever", "huge-length", "to-close-flood", "continue-flood", "dribble"}


def capped_push(run: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, float, int]:
    """(exit code, stderr, seconds, peak RSS in KiB) of ``s3sign push RUN .``."""
    rss = cwd / "maxrss"
    env = {**env, "S3SIGN_STALL_TIMEOUT": f"{STALL}s", "S3SIGN_TEST_MAXRSS": str(rss)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.capped_push", "push", run, "."],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUND * 3,  # far past the bound: the test fails on the bound, not here
        check=False,
    )
    return done.returncode, done.stderr, time.monotonic() - started, int(rss.read_text())


def assert_ended_in_bound(
    mode: str, ended: tuple[int, str, float, int], expected_code: int
) -> None:
    """The push ended with ``expected_code`` within the bound, small, naming what was wrong."""
    code, stderr, seconds, rss = ended
    assert code == expected_code, stderr
    assert seconds < BOUND, stderr
    print(f"{mode}: {seconds:.1f} s, peak RSS {rss // 1024} MiB")
    assert rss < MAX_RSS_KIB, f"peak RSS {rss} KiB"
    assert WHY[mode] in stderr, stderr
    assert "Traceback" not in stderr


def worker_env(backend: Backend, run: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env.update(S3SIGN_BACKEND=backend.url, S3SIGN_TOKEN=backend.token(run))
    return env


def selected(modes: tuple[str, ...]) -> list[str]:
    return [m for m in modes if MODE in ("full", "soak") or m in SHORT]


def three_files(root: Path) -> Path:
    work = root / "files"
    work.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (work / name).write_bytes(os.urandom(4096))
    return work


@pytest.mark.parametrize("mode", selected(MODES))
def test_a_hostile_store(backend: Backend, tmp_path: Path, mode: str) -> None:
    run = f"run-{uuid.uuid4().hex[:10]}"
    work = three_files(tmp_path)
    env = worker_env(backend, run)
    with HostilePeer(mode) as peer:
        port = backend.url.rsplit(":", 1)[1]
        env.update(http_proxy=peer.url, no_proxy=f"127.0.0.1:{port}")
        code, stderr, seconds, rss = capped_push(run, work, env)
    assert_ended_in_bound(mode, (code, stderr, seconds, rss), expected_code=1)
    assert peer.requests >= 3  # it was asked


@pytest.mark.parametrize("mode", selected(MODES))
def test_a_hostile_backend(tmp_path: Path, mode: str) -> None:
    work = three_files(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    with HostilePeer(mode) as peer:
        env.update(S3SIGN_BACKEND=peer.url, S3SIGN_TOKEN="t0k3n")
        ended = capped_push("run-1", work, env)
    assert_ended_in_bound(mode, ended, expected_code=5)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


SERVE_BOUND = 45.0  # seconds: one store call's deadline (25 s) and the request around it
SERVE_MAX_RSS_KIB = 200 * 1024  # the server with FastAPI loaded is ~80 MiB


@pytest.mark.parametrize("mode", selected(MODES))
def test_a_hostile_store_behind_serve(tmp_path: Path, mode: str) -> None:
    """The server's own S3 calls (reading the revoked tokens and the run's seal, starting a
    multipart upload) hold the same limits: the worker gets an answer naming what was wrong
    within the bound (a 503 when the revocations or the seal cannot be read, else per file),
    the server stays small."""
    import requests

    from tests.integration.conftest import running_backend
    from tests.integration.moto_store import MotoS3

    store = MotoS3(tmp_path / "unused.log")  # credentials and a bucket name; never started
    with (
        HostilePeer(mode) as peer,
        running_backend(
            store, tmp_path / "serve.log", endpoint_url=peer.url, address_space=4 * 1024**3
        ) as backend,
    ):
        token = backend.token("run-1")
        started = time.monotonic()
        answer = requests.post(
            f"{backend.url}/v1/runs/run-1/uploads",
            json={"files": [{"fileName": "big.bin", "fileSize": 300 * 1024 * 1024}]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=SERVE_BOUND * 3,
        )
        seconds = time.monotonic() - started
        rss = peak_rss_kib(backend.process.pid)
        healthy = requests.get(f"{backend.url}/healthz", timeout=5).status_code
    print(f"{mode}: {seconds:.1f} s, serve's peak RSS {rss // 1024} MiB")
    assert seconds < SERVE_BOUND
    assert rss < SERVE_MAX_RSS_KIB, f"peak RSS {rss} KiB"
    assert healthy == 200
    why = "no whole answer within" if mode == "dribble" else WHY[mode]
    if answer.status_code == 503:  # its first S3 calls: revoked tokens, the run's seal
        error = answer.json()["error"]
        assert error["code"] == "store_unreachable", error
        assert "cannot tell whether the token was revoked" in error["message"], error
        assert why in error["message"], error
        return
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["files"]
    assert result["error"]["code"] == "storage_unavailable", result
    assert why in result["error"]["message"], result
