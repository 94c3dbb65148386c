"""Faults between push and S3, and a backend or a store that dies in the middle of a push."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from s3sign.local.seaweed import LocalS3, free_ports
from tests.integration.conftest import behind_faults, running_backend
from tests.integration.faults import Faults, FaultyProxy
from tests.integration.test_push import (
    assert_no_secrets,
    assert_stored,
    open_uploads,
    push,
    push_env,
    run_id,
)
from tests.reliability.conftest import scale

MiB = 1024 * 1024


def mixed_tree(root: Path, count: int, big: int = 0) -> list[str]:
    """``count`` files of mixed sizes (0 B to ~1 MiB) in nested dirs, and maybe a big one."""
    names = []
    for index in range(count):
        name = f"mixed/{index % 5}/{index % 3}/file-{index}.bin"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom((index * 7919) % (MiB + 1) if index % 10 == 0 else index * 131))
        names.append(name)
    if big:
        path = root / "mixed" / "big.bin"
        path.write_bytes(os.urandom(big))
        names.append("mixed/big.bin")
    return names


def stored_keys(store: LocalS3, run: str) -> list[str]:
    """Every key under the run's prefix, from the store itself."""
    query = (("list-type", "2"), ("prefix", f"runs/{run}/"), ("max-keys", "1000"))
    text = requests.get(store.presigner().sign_bucket_get(store.bucket, query), timeout=30).text
    return re.findall(r"<Key>([^<]+)</Key>", text)


def test_every_fault_at_once_and_every_object_arrives_once(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    """Drops, resets mid-body, 500/503/429, stalls and latency: all arrive, identical, once."""
    root = tmp_path / "src"
    names = mixed_tree(root, scale(60, 200), big=12 * MiB)
    faults = Faults(
        drop=0.15,
        reset=0.05,
        unavailable=0.1,
        statuses=(500, 503, 429),
        stall=0.03,
        stall_seconds=0.5,
        latency=0.005,
        opening=["drop", "reset", "503"],  # each at least once, whatever the dice say
    )
    with behind_faults(local_s3, faults, tmp_path) as faulty:
        run = run_id()
        done = push(faulty, run, "mixed", "--json", "-vv", cwd=root)
        report = json.loads(done.stdout)
        failed = [
            (f["fileName"], f.get("error")) for f in report["files"] if f["status"] != "uploaded"
        ]
        assert done.returncode == 0, (done.stderr[-2000:], failed)
        assert sum(f["attempts"] - 1 for f in report["files"]) > 0
        assert all(faults.counts[name] > 0 for name in ("drop", "reset", "503"))
        assert_no_secrets(done.stderr, faulty.token(run))
    assert_stored(faulty, run, root, names)
    assert sorted(stored_keys(local_s3, run)) == sorted(f"runs/{run}/{n}" for n in names)
    assert f"runs/{run}/" not in open_uploads(local_s3)


def test_when_every_request_fails_every_file_is_reported(local_s3: LocalS3, tmp_path: Path) -> None:
    root = tmp_path / "src"
    names = mixed_tree(root, 8, big=6 * MiB)
    with behind_faults(local_s3, Faults(drop=1.0), tmp_path) as dead:
        run = run_id()
        done = push(dead, run, "mixed", "--json", cwd=root)
    assert done.returncode in (1, 5), done.stderr
    report = json.loads(done.stdout) if done.stdout else {"files": []}
    if done.returncode == 1:
        assert sorted(f["fileName"] for f in report["files"]) == sorted(names)
        assert all(f["status"] == "failed" and f["error"] for f in report["files"])
        tried = re.findall(r"after (\d+) attempts", " ".join(f["error"] for f in report["files"]))
        assert set(tried) <= {"5"}, tried  # nothing got through: no file was given more
        assert report["status"] == "error"
    assert f"runs/{run}/" not in open_uploads(local_s3)
    assert stored_keys(local_s3, run) == []


def test_backend_killed_and_restarted_mid_push(local_s3: LocalS3, tmp_path: Path) -> None:
    """The push keeps going: it waits for the backend and signs expired URLs again."""
    root = tmp_path / "src"
    names = mixed_tree(root, scale(40, 120))
    port = free_ports(1)[0]
    with FaultyProxy(local_s3.endpoint_url, Faults(latency=0.15)) as slow:
        first = running_backend(local_s3, tmp_path / "a.log", slow.url, port, expires="3s")
        backend = first.__enter__()
        run = run_id()
        env = push_env(backend, run)
        process = subprocess.Popen(
            [sys.executable, "-m", "s3sign", "push", run, "mixed", "--json", "--concurrency", "2"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)
        backend.process.send_signal(signal.SIGKILL)
        first.__exit__(None, None, None)
        time.sleep(2)  # URLs expire meanwhile; the push retries the backend with backoff
        with running_backend(local_s3, tmp_path / "b.log", slow.url, port, expires="3s") as again:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-2000:]
            assert_no_secrets(stdout + stderr, env["S3SIGN_TOKEN"])
            report = json.loads(stdout)
            assert all(f["status"] == "uploaded" for f in report["files"])
            assert_stored(again, run, root, names)
        log = (tmp_path / "b.log").read_text()
        assert f"POST /v1/runs/{run}/uploads HTTP" in log  # URLs signed again by the new one
        assert f"POST /v1/runs/{run}/uploads/complete HTTP" in log


def test_store_stopped_mid_push_then_skip_existing_finishes(tmp_path: Path) -> None:
    """The push fails cleanly; after a restart, --skip-existing uploads only the rest."""
    store = LocalS3(tmp_path / "store", bucket="reliability")
    store.start()
    try:
        root = tmp_path / "src"
        names = mixed_tree(root, scale(60, 200))
        with (
            FaultyProxy(store.endpoint_url, Faults(latency=0.2)) as slow,
            running_backend(store, tmp_path / "a.log", slow.url) as backend,
        ):
            run = run_id()
            env = push_env(backend, run)
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "s3sign",
                    "push",
                    run,
                    "mixed",
                    "--json",
                    "--concurrency",
                    "2",
                ],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 60
            while len(stored_keys(store, run)) < 5 and time.monotonic() < deadline:
                time.sleep(0.1)  # some files stored, most not yet
            store.stop()
            stdout, stderr = process.communicate(timeout=300)
        assert process.returncode in (1, 5), stderr[-2000:]
        assert_no_secrets(stdout + stderr, env["S3SIGN_TOKEN"])
        assert "Traceback" not in stderr
        if process.returncode == 1:  # every file accounted for; the rest not even tried
            errors = [f.get("error") or "" for f in json.loads(stdout)["files"]]
            assert any("stopped answering" in error for error in errors)
        store.start()  # the same data, new ports
        with running_backend(store, tmp_path / "b.log") as backend:
            stored_before = len(stored_keys(store, run))
            assert 0 < stored_before < len(names)
            done = push(backend, run, "mixed", "--json", "--skip-existing", cwd=root)
            assert done.returncode == 0, done.stderr[-2000:]
            report = json.loads(done.stdout)
            statuses = [f["status"] for f in report["files"]]
            assert statuses.count("skipped") >= stored_before - scale(
                8, 8
            )  # the last batch may be unverified
            assert statuses.count("uploaded") == len(names) - statuses.count("skipped")
            assert_stored(backend, run, root, names)
    finally:
        store.stop()
