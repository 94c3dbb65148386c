"""``s3sign push`` as a worker runs it: the real CLI process, the real backend, a real S3."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from s3sign.local.seaweed import LocalS3, free_ports
from s3sign.signing.store import ObjectStore
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import expand_paths
from s3sign.transfer.push import Pusher, PushOptions
from s3sign.transfer.report import SilentReporter
from s3sign.transfer.upload import Uploader
from tests.integration.conftest import Backend, behind_faults, running_backend
from tests.integration.faults import Faults, FaultyProxy
from tests.integration.test_backend import read_back

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
SECRETS_PATTERN = re.compile(r"X-Amz-Signature=|X-Amz-Credential=|Bearer ")


def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:10]}"


def push(
    backend: Backend,
    run: str,
    *args: str,
    cwd: Path,
    token: str | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 300,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    env = push_env(backend, run, token)
    env.update(extra_env or {})
    done = subprocess.run(
        [sys.executable, "-m", "s3sign", "push", run, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert_no_secrets(done.stdout + done.stderr, env["S3SIGN_TOKEN"])  # at every verbosity
    return done


def push_env(backend: Backend, run: str, token: str | None = None) -> dict[str, str]:
    """This process's environment without AWS_*/S3SIGN_*, pointed at ``backend`` for ``run``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env.update(S3SIGN_BACKEND=backend.url, S3SIGN_TOKEN=token or backend.token(run))
    return env


def assert_no_secrets(text: str, *secrets: str) -> None:
    assert not SECRETS_PATTERN.search(text), text
    for secret in secrets:
        assert not secret or secret not in text


def make_tree(root: Path, big: int = 0) -> dict[str, bytes]:
    """logs/ with nested dirs, unicode, spaces and '+', an empty file, and maybe a big one."""
    contents = {
        "logs/build.log": os.urandom(10_000),
        "logs/steps/step 1+2.json": b'{"ok": true}',
        "logs/steps/ü/naïve résumé.txt": "ünïcödé".encode(),
        "logs/empty.txt": b"",
        "logs/deep/a/b/c/d.bin": os.urandom(70_000),
    }
    for name, data in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if big:
        path = root / "logs" / "big.bin"
        with path.open("wb") as handle:
            for _ in range(big // MiB):
                handle.write(os.urandom(MiB))
        contents["logs/big.bin"] = b""  # compared by hash below
    return contents


def assert_stored(backend: Backend, run: str, root: Path, names: list[str]) -> None:
    for name in names:
        fetched = read_back(backend, f"runs/{run}/{name}")
        assert fetched.status_code == 200, name
        expected = (root / name).read_bytes()
        assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(expected).digest(), name


def test_push_a_tree_with_a_multipart_file(backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    contents = make_tree(tmp_path, big=150 * MiB)
    shell_expanded = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "logs").iterdir())
    token = backend.token(run)
    done = push(backend, run, *shell_expanded, "--json", cwd=tmp_path, token=token)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == 1
    assert report["status"] == "success"
    assert sorted(f["fileName"] for f in report["files"]) == sorted(contents)
    assert all(f["status"] == "uploaded" for f in report["files"])
    assert all(f["key"] == f"runs/{run}/{f['fileName']}" for f in report["files"])
    by_name = {f["fileName"]: f for f in report["files"]}
    for name in ("logs/big.bin", "logs/build.log"):  # multipart and one PUT alike
        digest = hashlib.sha256((tmp_path / name).read_bytes()).digest()
        assert by_name[name]["sha256"] == base64.b64encode(digest).decode(), name
    assert_stored(backend, run, tmp_path, list(contents))
    # Every part was bound to its SHA-256: the store keeps the composite checksum (10 parts).
    stored = ObjectStore(backend.store.presigner, backend.store.bucket).head(
        f"runs/{run}/logs/big.bin"
    )
    assert stored is not None
    assert (stored.checksum or "").endswith("-10")
    # Without --content-type, the backend names the type from the file name.
    stored_json = read_back(backend, f"runs/{run}/logs/steps/step 1+2.json")
    assert stored_json.headers["Content-Type"] == "application/json"
    stored_text = read_back(backend, f"runs/{run}/logs/steps/ü/naïve résumé.txt")
    assert stored_text.headers["Content-Type"] == "text/plain"
    assert_no_secrets(done.stdout + done.stderr, token)
    again = push(backend, run, "logs", "--skip-existing", cwd=tmp_path, token=token)
    assert again.returncode == 0, again.stderr
    assert f"0 uploaded (0B), {len(contents)} skipped, 0 failed" in again.stderr


def test_summary_dry_run_and_manifest(backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    make_tree(tmp_path)
    dry = push(backend, run, "logs", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0
    assert f"runs/{run}/logs/steps/step 1+2.json" in dry.stdout
    assert f"keys under runs/{run}/ ({backend.url})" in dry.stderr
    assert "nothing was signed" in dry.stderr
    assert read_back(backend, f"runs/{run}/logs/build.log").status_code == 404
    manifest = tmp_path / "manifest.json"
    done = push(
        backend, run, "logs/**/*.json", "logs/build.log", "--manifest", str(manifest), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert re.search(r"run run-\w+: 2 uploaded \(9\.8KiB\), 0 skipped, 0 failed", done.stderr)
    written = json.loads(manifest.read_text())
    assert [f["fileName"] for f in written["files"]] == [
        "logs/steps/step 1+2.json",
        "logs/build.log",
    ]
    assert "\r" not in done.stderr
    assert "\x1b" not in done.stderr
    typed = push(backend, run, "logs/steps", "--content-type", "text/x-log", cwd=tmp_path)
    assert typed.returncode == 0, typed.stderr
    for name in ("logs/steps/step 1+2.json", "logs/steps/ü/naïve résumé.txt"):
        stored = read_back(backend, f"runs/{run}/{name}")
        assert stored.headers["Content-Type"] == "text/x-log", name


def test_no_files_matched(backend: Backend, tmp_path: Path) -> None:
    done = push(backend, run_id(), "nothing/*", cwd=tmp_path)
    assert done.returncode == 2
    assert "no files matched 'nothing/*'" in done.stderr
    assert "--if-no-files-found" in done.stderr
    warned = push(backend, run_id(), "nothing/*", "--if-no-files-found", "warn", cwd=tmp_path)
    assert warned.returncode == 0
    assert "nothing/*: no file matched" in warned.stderr
    quiet = push(
        backend,
        run_id(),
        "nothing/*",
        "--if-no-files-found",
        "ignore",
        "--json",
        cwd=tmp_path,
        extra_env={"S3SIGN_BACKEND": "", "S3SIGN_TOKEN": ""},
    )
    assert quiet.returncode == 0, quiet.stderr  # nothing to upload: no backend or token needed
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout)["files"] == []


def test_files_from_a_list_or_stdin(backend: Backend, tmp_path: Path) -> None:
    """--files-from: paths one per line, as written (CRLF too), from a file or stdin."""
    run = run_id()
    make_tree(tmp_path)
    (tmp_path / "list.txt").write_text("logs/build.log\r\n\nlogs/steps/step 1+2.json\n")
    done = push(backend, run, "--files-from", "list.txt", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    uploaded = [f["fileName"] for f in json.loads(done.stdout)["files"]]
    assert uploaded == ["logs/build.log", "logs/steps/step 1+2.json"]
    assert_stored(backend, run, tmp_path, uploaded)
    piped = push(
        backend, run, "logs/empty.txt", "--files-from", "-", cwd=tmp_path, stdin="logs/nope\n"
    )
    assert piped.returncode == 0, piped.stderr
    assert "logs/nope: no file matched" in piped.stderr
    assert "1 uploaded" in piped.stderr
    for args, stdin, says in [
        ((), None, "no paths to push"),
        (("--files-from", "-"), "", "no files matched (an empty list)"),
        (("--files-from", "missing.txt"), None, "--files-from missing.txt: cannot read it"),
    ]:
        refused = push(backend, run, *args, cwd=tmp_path, stdin=stdin)
        assert refused.returncode == 2, refused.stderr
        assert says in refused.stderr


def test_bad_token_and_unreachable_backend(backend: Backend, tmp_path: Path) -> None:
    make_tree(tmp_path)
    refused = push(backend, run_id(), "logs", cwd=tmp_path, token=backend.token("other-run"))
    assert refused.returncode == 4, refused.stderr
    assert "wrong_run" in refused.stderr
    missing = push(backend, run_id(), "logs", cwd=tmp_path, extra_env={"S3SIGN_TOKEN": ""})
    assert missing.returncode == 4
    assert "s3sign token" in missing.stderr
    down = push(
        backend,
        run_id(),
        "logs",
        cwd=tmp_path,
        extra_env={"S3SIGN_BACKEND": f"http://127.0.0.1:{free_ports(1)[0]}"},
    )
    assert down.returncode == 5, down.stderr
    assert down.stderr.count("attempts") == 1, down.stderr  # said once, not once per file
    assert "5 failed" in down.stderr


def test_rejected_file_is_exit_1_and_the_others_upload(local_s3: LocalS3, tmp_path: Path) -> None:
    with running_backend(local_s3, tmp_path / "serve.log", max_file_size="50KiB") as small:
        run = run_id()
        make_tree(tmp_path)
        done = push(small, run, "logs", cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert "logs/deep/a/b/c/d.bin" in done.stderr
        assert "too_large" in done.stderr
        assert_stored(small, run, tmp_path, ["logs/build.log", "logs/empty.txt"])


def test_file_deleted_or_changed_after_listing(backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    make_tree(tmp_path)
    files = list(expand_paths([str(tmp_path / "logs")], tmp_path).files)
    assert len(files) == 5
    (tmp_path / "logs" / "build.log").unlink()
    (tmp_path / "logs" / "empty.txt").write_text("still being written")
    client = BackendClient(backend.url, backend.token(run))
    report = Pusher(client, PushOptions(run_id=run), SilentReporter()).push(files)
    outcomes = {f.file_name: f for f in report.files}
    assert outcomes["logs/build.log"].status == "failed"
    assert "disappeared" in (outcomes["logs/build.log"].error or "")
    assert outcomes["logs/empty.txt"].status == "failed"
    assert "changed" in (outcomes["logs/empty.txt"].error or "")
    assert outcomes["logs/deep/a/b/c/d.bin"].status == "uploaded"
    assert report.status == "partial"


def test_push_through_faults(local_s3: LocalS3, tmp_path: Path) -> None:
    """Drops, 503s and stalls between push and S3: every file arrives, retries are counted."""
    faults = Faults(drop=0.2, unavailable=0.1, stall=0.05, stall_seconds=0.5)
    root = tmp_path / "src"
    names = []
    for index in range(200):
        name = f"many/{index % 7}/file-{index}.bin"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(index * 97 % 20_000))
        names.append(name)
    with (
        FaultyProxy(local_s3.endpoint_url, faults) as proxy,
        running_backend(local_s3, tmp_path / "serve.log", endpoint_url=proxy.url) as faulty,
    ):
        run = run_id()
        done = push(faulty, run, "many", "--json", cwd=root)
        report = json.loads(done.stdout)
        failed = [f for f in report["files"] if f["status"] != "uploaded"]
        assert done.returncode == 0, (
            done.stderr,
            [(f["fileName"], f.get("error")) for f in failed],
        )
        assert report["status"] == "success"
        assert sum(f["attempts"] - 1 for f in report["files"]) > 0
        assert faults.counts["drop"] > 0
        assert faults.counts["503"] > 0
    assert_stored(faulty, run, root, names)


def test_a_file_s3_keeps_refusing_retries_longer_while_the_others_get_through(
    local_s3: LocalS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5 attempts; while other uploads succeed, S3 is up and a file it keeps refusing was
    unlucky, so it gets up to 10. (When nothing gets through, 5 is all: test_faults.)"""
    monkeypatch.setattr("s3sign.transfer.upload.backoff", lambda attempt: 0.1)
    monkeypatch.setattr("s3sign.transfer.verify.backoff", lambda attempt: 0.1)
    for name in ("a-unlucky.bin", "b-doomed.bin", *(f"c-{index}.txt" for index in range(60))):
        (tmp_path / name).write_bytes(os.urandom(1000))
    files = sorted(expand_paths([str(tmp_path)], tmp_path).files, key=lambda f: f.name)
    faults = Faults(refuse={"a-unlucky.bin": 7, "b-doomed.bin": 1000})
    run = run_id()
    with behind_faults(local_s3, faults, tmp_path) as faulty:
        client = BackendClient(faulty.url, faulty.token(run))
        options = PushOptions(run_id=run, concurrency=4)
        report = Pusher(client, options, SilentReporter()).push(files)
    outcomes = {f.file_name: f for f in report.files}
    assert outcomes["a-unlucky.bin"].status == "uploaded"
    assert outcomes["a-unlucky.bin"].attempts == 8
    assert outcomes["b-doomed.bin"].status == "failed"
    assert "503 SlowDown (after 10 attempts)" in (outcomes["b-doomed.bin"].error or "")
    assert [f.status for f in report.files].count("uploaded") == 61


def test_a_store_fault_behind_the_backend_fails_no_file(
    local_s3: LocalS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 fails the backend's own calls longer than the backend retries them (creating a
    multipart upload, the HEAD at complete): it answers storage_unavailable, and the push
    asks again instead of failing the file."""
    monkeypatch.setattr("s3sign.transfer.upload.backoff", lambda attempt: 0.1)
    monkeypatch.setattr("s3sign.transfer.verify.backoff", lambda attempt: 0.1)
    (tmp_path / "big.bin").write_bytes(os.urandom(6 * MiB))
    (tmp_path / "small.txt").write_text("fine")
    files = list(expand_paths([str(tmp_path)], tmp_path).files)
    run = run_id()
    prefix = f"/{local_s3.bucket}/runs/{run}"
    faults = Faults(refuse={f"POST {prefix}/big.bin?uploads": 6, f"HEAD {prefix}/small.txt": 6})
    with behind_faults(local_s3, faults, tmp_path) as faulty:
        client = BackendClient(faulty.url, faulty.token(run))
        report = Pusher(client, PushOptions(run_id=run), SilentReporter()).push(files)
    assert [(f.file_name, f.status, f.error) for f in report.files] == [
        ("big.bin", "uploaded", None),
        ("small.txt", "uploaded", None),
    ]
    assert faults.refuse == dict.fromkeys(faults.refuse, 0)  # every refusal was made
    assert_stored(faulty, run, tmp_path, ["big.bin", "small.txt"])


def test_expired_urls_are_signed_again(local_s3: LocalS3, tmp_path: Path) -> None:
    """URLs live 2 s; a slow link makes later files wait longer than that."""
    root = tmp_path / "src"
    names = []
    for index in range(12):
        path = root / "slow" / f"f{index}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {index}\n")
        names.append(f"slow/f{index}.txt")
    with (
        FaultyProxy(local_s3.endpoint_url, Faults(latency=0.4)) as proxy,
        running_backend(
            local_s3, tmp_path / "serve.log", endpoint_url=proxy.url, expires="2"
        ) as short,
    ):
        run = run_id()
        before = _requests_served(short)
        done = push(short, run, "slow", "--concurrency", "1", "--json", cwd=root)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "success"
        # info + create + complete, plus at least one create to sign again
        assert _requests_served(short) - before > 3
    assert_stored(short, run, root, names)


def _requests_served(backend: Backend) -> int:
    return backend.metric("s3sign_requests_total")


def open_uploads(store: LocalS3) -> str:
    """ListMultipartUploads of the bucket, as XML."""
    url = store.presigner().sign_bucket_get(store.bucket, (("uploads", ""),))
    return requests.get(url, timeout=30).text


@pytest.mark.parametrize(
    ("signum", "exit_code", "says"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_sigterm_aborts_open_multipart_uploads(
    local_s3: LocalS3, tmp_path: Path, signum: int, exit_code: int, says: str
) -> None:
    """Ctrl-C, or SIGTERM (a cancelled CI job, a stopped container): no upload left open,
    the manifest still written, each file's reason said once."""
    root = tmp_path / "src"
    root.mkdir()
    with (root / "huge.bin").open("wb") as handle:
        for _ in range(120):
            handle.write(os.urandom(MiB))
    with (
        FaultyProxy(local_s3.endpoint_url, Faults(latency=1.0)) as proxy,
        running_backend(local_s3, tmp_path / "serve.log", endpoint_url=proxy.url) as slow,
    ):
        run = run_id()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
        env.update(S3SIGN_BACKEND=slow.url, S3SIGN_TOKEN=slow.token(run))
        manifest = tmp_path / "manifest.json"
        process = subprocess.Popen(
            [sys.executable, "-m", "s3sign", "push", run, "huge.bin", "--manifest", manifest],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while f"runs/{run}/huge.bin" not in open_uploads(local_s3):  # parts on their way
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.2)
        time.sleep(1)  # and the push has heard of it (the store's answers take 1 s here)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == exit_code, stderr
        assert stderr.count(says) == 1, stderr
        assert f"runs/{run}/huge.bin" not in open_uploads(local_s3)
    report = json.loads(manifest.read_text())
    assert report["status"] == "error"
    assert [(f["fileName"], f["status"], f["error"]) for f in report["files"]] == [
        ("huge.bin", "failed", says)
    ]


@pytest.mark.parametrize(
    ("checksum", "one_pass"),
    [("sha256", False), ("sha256", True), ("md5", False)],
    ids=["sha256-per-part", "sha256-one-pass", "md5-per-part"],
)
def test_a_part_that_does_not_match_its_digest_is_refused(
    local_s3: LocalS3,
    small_parts: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    checksum: str,
    one_pass: bool,
) -> None:
    """A part whose bytes differ from what its URL was bound to: the real store refuses it,
    the file fails with that reason, the others upload, and the upload is aborted. Part
    digests come from each part's task, or (with a report) from the one pass over the file
    that also gives its whole SHA-256: then no part is read twice."""
    from s3sign.digests import range_digest as real
    from s3sign.digests import sha256_with_parts as real_pass

    run = run_id()
    (tmp_path / "big.bin").write_bytes(os.urandom(12 * MiB))  # 3 parts of 5 MiB
    (tmp_path / "small.txt").write_text("fine")

    def corrupted(path: str, offset: int, length: int, algorithm: Any) -> str:
        assert not one_pass, "a part read again"
        digest = real(path, offset, length, algorithm)
        return real(path, 0, 1, algorithm) if offset else digest  # wrong for parts 2 and 3

    def corrupted_pass(path: str, part_size: int, on_part: Any) -> str:
        wrong = real(path, 0, 1, "sha256")
        return real_pass(path, part_size, lambda n, digest: on_part(n, wrong if n > 1 else digest))

    monkeypatch.setattr("s3sign.transfer.parts.range_digest", corrupted)
    monkeypatch.setattr("s3sign.transfer.push.sha256_with_parts", corrupted_pass)
    names = [str(tmp_path / "big.bin"), str(tmp_path / "small.txt")]
    files = list(expand_paths(names, tmp_path).files)
    client = BackendClient(small_parts.url, small_parts.token(run))
    options = PushOptions(run_id=run, checksum=checksum, hash_multipart=one_pass)  # type: ignore[arg-type]
    report = Pusher(client, options, SilentReporter()).push(files)
    outcomes = {f.file_name: f for f in report.files}
    assert outcomes["small.txt"].status == "uploaded"
    assert outcomes["big.bin"].status == "failed"
    assert "S3 refused the" in (outcomes["big.bin"].error or ""), outcomes["big.bin"].error
    assert read_back(small_parts, f"runs/{run}/big.bin").status_code == 404
    assert f"runs/{run}/big.bin" not in open_uploads(local_s3)


def test_an_expired_part_url_is_signed_again_with_its_digest(
    local_s3: LocalS3, small_parts: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each part's first URL is taken as expired: its new URL must carry the same SHA-256,
    or the store refuses to assemble an upload created with part checksums."""
    import dataclasses
    from datetime import UTC, datetime, timedelta

    real_signed = Uploader.signed
    first_urls: set[int] = set()

    def expired_at_first(uploader: Uploader, upload: Any) -> Any:
        signed = real_signed(uploader, upload)
        number = getattr(upload, "part_number", None)
        if number is None or number in first_urls:
            return signed
        first_urls.add(number)
        return dataclasses.replace(signed, refresh_at=datetime.now(UTC) - timedelta(seconds=1))

    monkeypatch.setattr(Uploader, "signed", expired_at_first)
    run = run_id()
    (tmp_path / "big.bin").write_bytes(os.urandom(12 * MiB))  # 3 parts of 5 MiB
    before = _requests_served(small_parts)
    files = list(expand_paths([str(tmp_path / "big.bin")], tmp_path).files)
    client = BackendClient(small_parts.url, small_parts.token(run))
    report = Pusher(client, PushOptions(run_id=run), SilentReporter()).push(files)
    assert report.files[0].status == "uploaded", report.files[0].error
    # info, create, 3 parts signed, 3 signed again, complete
    assert _requests_served(small_parts) - before >= 9
    stored = ObjectStore(local_s3.presigner, local_s3.bucket).head(f"runs/{run}/big.bin")
    assert first_urls == {1, 2, 3}
    assert stored is not None
    assert (stored.checksum or "").endswith("-3")


def test_a_worker_whose_clock_is_20_minutes_ahead_takes_no_good_url_for_expired(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """URLs expire by the backend's clock (S3's): the push reads it from the Date header."""
    from datetime import datetime, timedelta

    class Ahead(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(minutes=20)

    monkeypatch.setattr("s3sign.transfer.upload.datetime", Ahead)
    monkeypatch.setattr("s3sign.transfer.backend.datetime", Ahead)
    run = run_id()
    contents = make_tree(tmp_path)
    files = list(expand_paths([str(tmp_path / "logs")], tmp_path).files)
    client = BackendClient(backend.url, backend.token(run))
    report = Pusher(client, PushOptions(run_id=run), SilentReporter()).push(files)
    assert [(f.status, f.attempts) for f in report.files] == [("uploaded", 1)] * len(contents)
    assert -timedelta(minutes=21) < client.clock_offset < -timedelta(minutes=19)


def test_no_secrets_at_vv(backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    make_tree(tmp_path)
    token = backend.token(run)
    done = push(backend, run, "logs", "-vv", cwd=tmp_path, token=token)
    assert done.returncode == 0, done.stderr
    assert "uploaded logs/build.log" in done.stderr
    assert_no_secrets(done.stdout + done.stderr, token, backend.store.credentials.secret_key)


def test_live_progress_on_a_terminal(backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    make_tree(tmp_path, big=20 * MiB)
    code, text = push_on_terminal(backend, run, "logs", cwd=tmp_path, columns=100)
    assert code == 0, text
    assert "\x1b[" in text  # a live display draws with escape codes
    assert "files" in text
    assert "uploaded" in text  # and the summary follows it


def push_on_terminal(
    backend: Backend, run: str, *paths: str, cwd: Path, columns: int
) -> tuple[int, str]:
    """``s3sign push RUN PATHS`` with stderr on a pseudo-terminal (colour allowed): its exit
    code and what the terminal showed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env.update(S3SIGN_BACKEND=backend.url, S3SIGN_TOKEN=backend.token(run), TERM="xterm")
    env.update(COLUMNS=str(columns))
    env.pop("NO_COLOR", None)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "s3sign", "push", run, *paths],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    screen = b"".join(_drain(controller, process)).decode(errors="replace")
    return process.wait(60), screen


def _drain(fd: int, process: subprocess.Popen[Any]) -> Iterator[bytes]:
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            yield chunk
        elif process.poll() is not None:
            return


def test_md5_checksum_and_skip_existing(backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    contents = make_tree(tmp_path)
    token = backend.token(run)
    first = push(backend, run, "logs", "--checksum", "md5", cwd=tmp_path, token=token)
    assert first.returncode == 0, first.stderr
    assert_stored(backend, run, tmp_path, list(contents))
    again = push(
        backend, run, "logs", "--checksum", "md5", "--skip-existing", cwd=tmp_path, token=token
    )
    assert again.returncode == 0, again.stderr
    assert f"0 uploaded (0B), {len(contents)} skipped" in again.stderr
    (tmp_path / "logs" / "build.log").write_bytes(os.urandom(10_000))  # same size, new bytes
    changed = push(
        backend,
        run,
        "logs",
        "--checksum",
        "md5",
        "--skip-existing",
        "--json",
        cwd=tmp_path,
        token=token,
    )
    statuses = {f["fileName"]: f["status"] for f in json.loads(changed.stdout)["files"]}
    assert statuses["logs/build.log"] == "uploaded"
    assert list(statuses.values()).count("skipped") == len(contents) - 1


def test_skip_existing_compares_a_multipart_object_by_its_parts_sha256(
    local_s3: LocalS3, small_parts: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts bound to their SHA-256 leave S3's composite checksum on the object: a second
    push compares it with the parts' digests from its one pass over the file (no MD5 pass)
    and skips the file; the same size with other bytes is uploaded again."""
    run = run_id()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * MiB))  # 3 parts of 5 MiB

    def md5_pass(*args: Any) -> str:
        raise AssertionError("the file was read again for its multipart ETag")

    monkeypatch.setattr("s3sign.transfer.verify.multipart_etag", md5_pass)
    client = BackendClient(small_parts.url, small_parts.token(run))

    def pushed() -> str:
        files = list(expand_paths([str(big)], tmp_path).files)
        options = PushOptions(run_id=run, skip_existing=True)
        report = Pusher(client, options, SilentReporter()).push(files)
        [outcome] = report.files
        assert (
            outcome.sha256 == base64.b64encode(hashlib.sha256(big.read_bytes()).digest()).decode()
        )
        return outcome.status

    assert pushed() == "uploaded"
    assert pushed() == "skipped"
    big.write_bytes(os.urandom(12 * MiB))
    assert pushed() == "uploaded"
    assert read_back(small_parts, f"runs/{run}/big.bin").content == big.read_bytes()


def test_skip_existing_compares_a_multipart_object_by_its_etag_without_part_checksums(
    local_s3: LocalS3, small_parts: Backend, tmp_path: Path
) -> None:
    """With --checksum md5 the parts carry no SHA-256: the stored ETag (the MD5 of the
    parts' MD5s) is compared instead, reading each part in blocks."""
    run = run_id()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * MiB))  # 3 parts of 5 MiB
    client = BackendClient(small_parts.url, small_parts.token(run))

    def pushed() -> str:
        files = list(expand_paths([str(big)], tmp_path).files)
        options = PushOptions(run_id=run, checksum="md5", skip_existing=True)
        [outcome] = Pusher(client, options, SilentReporter()).push(files).files
        return outcome.status

    assert pushed() == "uploaded"
    assert pushed() == "skipped"
    big.write_bytes(os.urandom(12 * MiB))
    assert pushed() == "uploaded"


def test_a_name_the_backend_refuses_fails_alone(backend: Backend, tmp_path: Path) -> None:
    """With --skip-existing too: the check for stored objects falls back, the file is named."""
    run = run_id()
    make_tree(tmp_path)
    (tmp_path / "logs" / "bad\x01name.txt").write_text("control character in the name")
    done = push(backend, run, "logs", "--skip-existing", "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    outcomes = {f["fileName"]: f for f in json.loads(done.stdout)["files"]}
    assert outcomes["logs/bad\x01name.txt"]["status"] == "failed"
    assert "invalid_name" in outcomes["logs/bad\x01name.txt"]["error"]
    assert outcomes["logs/build.log"]["status"] == "uploaded"


def test_the_python_api_pushes_as_the_command_does(backend: Backend, tmp_path: Path) -> None:
    """``s3sign.push``: the same engine, settings from the environment given (not the
    process's), a report back and nothing printed."""
    import s3sign

    run = run_id()
    contents = make_tree(tmp_path)
    env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_TOKEN": backend.token(run), "HOME": "/"}
    report = s3sign.push(run, ["logs"], base=tmp_path, env=env)
    assert report.status == "success"
    assert sorted(f.file_name for f in report.files) == sorted(contents)
    assert_stored(backend, run, tmp_path, list(contents))
    with pytest.raises(s3sign.S3SignError, match="no run token"):
        s3sign.push(run, ["logs"], base=tmp_path, env={"S3SIGN_BACKEND": backend.url})
