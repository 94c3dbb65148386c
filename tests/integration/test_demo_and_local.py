"""`s3sign demo` and `s3sign serve --local`: the newcomer's first commands, for real."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from s3sign.credentials import Credentials
from s3sign.local.seaweed import free_ports
from s3sign.signing.presign import Presigner, SignRequest

pytestmark = pytest.mark.integration


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", **extra)
    return env


def test_demo_round_trip() -> None:
    """With proxies set that lead nowhere: the embedded store and the demo's backend, on
    127.0.0.1, are always reached directly (before, the demo's push went to the proxy)."""
    started = time.monotonic()
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    done = subprocess.run(
        [sys.executable, "-m", "s3sign", "demo"],
        env=clean_env(http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    assert "6 uploaded" in done.stderr
    assert "6 pulled back" in done.stderr  # with a read token, into a second folder
    assert done.stderr.count("identical") == 6
    assert "a stable link to logs/log_12345.json" in done.stderr
    assert "served it" in done.stderr
    assert "DIFFERENT" not in done.stderr
    assert "none of the" in done.stderr
    assert "all objects verified" in done.stderr
    assert done.stdout == ""
    assert "X-Amz-Signature" not in done.stderr


def _start_local(data_dir: Path, port: int, **env: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s3sign",
            "serve",
            "--local",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=clean_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise AssertionError(process.communicate()[1])


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    return stderr


def test_serve_local_persists_objects_and_secrets(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_ports(1)[0]
    server = _start_local(data_dir, port)
    try:
        for name in ("server-secret", "s3-credentials.json"):
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
        secret = _push_one(data_dir, port, tmp_path / "src", "kept across restarts\n")
    finally:
        stderr = _stop(server)
    assert "export S3SIGN_BACKEND=" in stderr
    assert secret not in stderr  # the secret is read from its file, never printed

    server = _start_local(data_dir, port)  # the same data, after a restart
    try:
        assert _read_back(server, data_dir) == "kept across restarts\n"
    finally:
        _stop(server)


def test_two_local_stacks_side_by_side_and_sigkill_leaves_no_store(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_port, second_port = free_ports(2)
    first = _start_local(first_dir, first_port)
    # The bucket as configured (S3SIGN_BUCKET here): serve --local used to take "s3sign"
    second = _start_local(second_dir, second_port, S3SIGN_BUCKET="team-artifacts")
    try:
        _push_one(first_dir, first_port, tmp_path / "a", "first\n")
        _push_one(second_dir, second_port, tmp_path / "b", "second\n")
        assert "(bucket team-artifacts)" in _wait_for_line(second, "S3 at ")[-1]
        assert _store_processes(first_dir)
        assert _store_processes(second_dir)

        first.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel must stop weed
        first.wait(10)
        deadline = time.monotonic() + 10
        while _store_processes(first_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _store_processes(first_dir), "weed outlived a SIGKILLed serve --local"
        assert requests.get(f"http://127.0.0.1:{second_port}/readyz", timeout=5).ok

        first = _start_local(first_dir, first_port)  # restarts on the same data
        assert _read_back(first, first_dir) == "first\n"
    finally:
        _stop(first)
        _stop(second)
    assert not _store_processes(first_dir)
    assert not _store_processes(second_dir)


def _push_one(data_dir: Path, port: int, artifacts: Path, text: str) -> str:
    """Push logs/build.log holding ``text`` into run my-run; the server secret."""
    secret = (data_dir / "server-secret").read_text().strip()
    (artifacts / "logs").mkdir(parents=True)
    (artifacts / "logs" / "build.log").write_text(text)
    env = clean_env(S3SIGN_BACKEND=f"http://127.0.0.1:{port}", S3SIGN_SERVER_SECRET=secret)
    token = subprocess.run(
        [sys.executable, "-m", "s3sign", "token", "my-run"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    pushed = subprocess.run(
        [sys.executable, "-m", "s3sign", "push", "my-run", "logs"],
        cwd=artifacts,
        env={**env, "S3SIGN_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pushed.returncode == 0, pushed.stderr
    return secret


def _read_back(server: subprocess.Popen[str], data_dir: Path) -> str:
    """The pushed build.log, read through a presigned GET with the stored credentials."""
    stored = json.loads((data_dir / "s3-credentials.json").read_text())
    endpoint = next(line.split("S3 at ")[1].split()[0] for line in _wait_for_line(server, "S3 at "))
    presigner = Presigner(
        Credentials(stored["access_key"], stored["secret_key"]), "us-east-1", endpoint, "path"
    )
    url = presigner.sign(SignRequest("s3sign", "runs/my-run/logs/build.log", method="GET")).url
    return requests.get(url, timeout=30).text


def _store_processes(data_dir: Path) -> list[int]:
    """Processes whose command line names ``data_dir``: the weed of that stack."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "weed" in command and str(data_dir) in command:
                found.append(int(entry.name))
    return found


def _wait_for_line(process: subprocess.Popen[str], text: str) -> list[str]:
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if text in line:
            return [line]
    return lines
