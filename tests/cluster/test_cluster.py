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


def under_way(cluster: Cluster, runs: list[str], timeout: float = 60) -> None:
    """Until the store holds a few files of every run, but not yet the big one."""
    store, deadline = cluster.object_store(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = [store.list_objects(f"runs/{run}/", "")[0] for run in runs]
        keys = [{key.rsplit("/", 1)[1] for key, _ in objects} for objects in listed]
        if all(len(names) >= 5 for names in keys):
            assert not any("big.bin" in names for names in keys), "too late: make it bigger"
            return
        time.sleep(0.05)
    raise AssertionError("the pushes stored nothing within a minute")


def test_four_pushes_survive_a_replica_and_a_volume_server_lost_under_load(
    cluster: Cluster, tmp_path: Path
) -> None:
    small, big = scale(150, 500), scale(48 * MiB, 300 * MiB)
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
    under_way(cluster, list(pushes))  # every push has stored files, none has ended
    cluster.kill("s3sign-2")  # a replica crashes: HAProxy's health check drops it
    time.sleep(0.5)
    cluster.kill("volume-3")  # a volume server crashes, and stays down
    assert all(process.poll() is None for process in pushes.values()), "a push ended before"
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


def test_a_multipart_upload_goes_through_three_replicas(cluster: Cluster, tmp_path: Path) -> None:
    """Created through one replica, parts signed by another, completed by the third, with
    one token minted with the shared secret: the replicas share nothing but it and S3."""
    run = f"across-{uuid.uuid4().hex[:8]}"
    token = cluster.token(run)
    one, two, three = cluster.replica_urls
    data = os.urandom(11 * MiB)

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
