"""Beyond one machine's single processes: three `s3sign serve` replicas behind HAProxy,
over SeaweedFS as a master, three volume servers, a filer and two gateways (behind HAProxy
too), losing a replica and a volume server in the middle of four parallel pushes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from deploy.local_cluster.cluster import Cluster
from tests.cluster.conftest import scale
from tests.oidc_issuer import Issuer

MiB = 1024 * 1024
PUSHES = 4


def tree(root: Path, small: int, big: int) -> dict[str, str]:
    """``small`` files of 0-64 KiB and one of ``big`` bytes: name -> SHA-256."""
    digests = {}
    for index in range(small):
        name = f"out/{index % 7}/file-{index}.bin"
        data = os.urandom((index * 4099) % (64 * 1024))
        digests[name] = _write(root / name, data)
    digests["out/big.bin"] = _write(root / "out" / "big.bin", os.urandom(big))
    return digests


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def s3sign(
    cluster: Cluster, args: list[str], token: str, cwd: Path, backend: str | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env |= {
        "S3SIGN_BACKEND": backend or cluster.backend_url,
        "S3SIGN_TOKEN": token,
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(cwd),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "s3sign", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def under_way(cluster: Cluster, runs: list[str], files: int, timeout: float = 60) -> None:
    """Until the store holds a few files of every run, and not yet half of any."""
    store, deadline = cluster.object_store(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = [len(store.list_objects(f"runs/{run}/", "")[0]) for run in runs]
        if all(count >= 5 for count in counts):
            assert max(counts) < files // 2, "too late: the pushes are too short"
            return
        time.sleep(0.05)
    raise AssertionError("the pushes stored nothing within a minute")


def test_four_pushes_survive_a_replica_and_a_volume_server_lost_under_load(
    cluster: Cluster, tmp_path: Path
) -> None:
    small, big = scale(300, 500), scale(48 * MiB, 300 * MiB)
    runs = {f"cluster-{uuid.uuid4().hex[:8]}": tmp_path / f"push-{n}" for n in range(PUSHES)}
    digests = {run: tree(root, small, big) for run, root in runs.items()}
    pushes = {
        run: s3sign(cluster, ["push", run, "out", "--concurrency", "8"], cluster.token(run), root)
        for run, root in runs.items()
    }
    outputs: dict[str, tuple[str, str]] = {}

    def wait(run: str) -> None:
        outputs[run] = pushes[run].communicate(timeout=scale(600, 1800))

    started = time.monotonic()
    waiting = [threading.Thread(target=wait, args=(run,)) for run in pushes]
    for thread in waiting:
        thread.start()
    under_way(cluster, list(pushes), small + 1)  # every push has stored files, none all
    cluster.kill("s3sign-2")  # a replica crashes: HAProxy's health check drops it
    assert all(process.poll() is None for process in pushes.values()), "a push ended before"
    time.sleep(0.5)
    cluster.kill("volume-3")  # a volume server crashes, and stays down
    time.sleep(scale(2, 10))
    cluster.restart("s3sign-2")  # the replica comes back, and is checked in again
    for thread in waiting:
        thread.join()
    print(f"pushes done {time.monotonic() - started:.1f}s after they started")
    for run, process in pushes.items():
        stdout, stderr = outputs[run]
        assert process.returncode == 0, f"{run}: {stderr[-3000:]}"
        assert cluster.token(run) not in stdout + stderr

    store = cluster.object_store()
    assert store.open_uploads("runs/") == []  # no multipart upload left open
    for run, root in runs.items():  # every object byte-identical: pulled back, compared
        back = root / "back"
        pull = s3sign(cluster, ["pull", run, "-o", str(back)], cluster.token(run), root)
        _, stderr = pull.communicate(timeout=scale(300, 1800))
        assert pull.returncode == 0, stderr[-3000:]
        pulled = {
            str(path.relative_to(back)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in back.rglob("*")
            if path.is_file()
        }
        assert pulled == digests[run]
    cluster.restart("volume-3")  # for the next test


def test_a_multipart_upload_goes_through_three_replicas(cluster: Cluster, issuer: Issuer) -> None:
    """A token minted by replica 1 (for a CI job's ID token), a multipart upload created
    through replica 1, its parts signed by replica 2, completed by replica 3: the replicas
    share nothing but the secret and S3."""
    one, two, three = cluster.replica_urls
    exchanged = requests.post(f"{one}/v1/token/exchange", json={"token": issuer.mint()}, timeout=30)
    assert exchanged.status_code == 200, exchanged.text
    run, token = exchanged.json()["runId"], exchanged.json()["token"]
    threshold = requests.get(f"{one}/v1/info", timeout=10).json()["multipartThreshold"]
    data = os.urandom(threshold + 3 * MiB)  # multipart: at least two parts

    def post(base: str, path: str, body: object) -> Any:
        answer = requests.post(
            f"{base}/v1/runs/{run}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    created = post(one, "/uploads", {"files": [{"fileName": "big.bin", "fileSize": len(data)}]})
    [file] = created["files"]
    key, plan = file["key"], file["multipart"]
    size, count = plan["partSize"], plan["partCount"]
    signed = post(
        two,
        "/uploads/parts",
        {
            "key": key,
            "uploadId": plan["uploadId"],
            "fileSize": len(data),
            "partNumbers": list(range(1, count + 1)),
        },
    )
    parts = []
    for part in signed["parts"]:
        number = part["partNumber"]
        chunk = data[(number - 1) * size : number * size]
        put = requests.put(part["url"], data=chunk, headers=part["headers"], timeout=60)
        assert put.status_code == 200, put.text
        parts.append({"partNumber": number, "etag": put.headers["ETag"]})
    completed = post(
        three,
        "/uploads/complete",
        {
            "files": [
                {"key": key, "fileSize": len(data), "uploadId": plan["uploadId"], "parts": parts}
            ]
        },
    )
    assert completed["files"][0]["status"] == "complete"
    stored = cluster.object_store().head(str(key))
    assert stored is not None
    assert stored.size == len(data)


def processes_under(folder: Path) -> set[int]:
    """The processes whose working directory is in ``folder`` (each cluster part's is)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def test_the_script_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    """`python -m deploy.local_cluster.cluster`, then SIGKILL: the kernel ends every part."""
    root = tmp_path / "by-hand"
    script = subprocess.Popen(
        [sys.executable, "-m", "deploy.local_cluster.cluster", "--dir", str(root)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert script.stdout is not None
        lines = []
        for line in script.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops it all"):
                break
        assert any(line.startswith("backend (HAProxy):") for line in lines), lines
        secret = (root / "server-secret").read_text().strip()
        assert secret not in "".join(lines)  # named by its file, never printed
        parts = processes_under(root)
        assert len(parts) == 11  # master, 3 volumes, filer, 2 gateways, haproxy, 3 replicas
    finally:
        script.kill()
        script.wait()
    deadline = time.monotonic() + 15
    while processes_under(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_under(root) == set()
