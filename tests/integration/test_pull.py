"""`s3sign pull` against the real serve and SeaweedFS: a pushed tree comes back identical,
a changed object is refused with nothing at its name, and names from a hostile backend
never land outside the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import requests

from s3sign.errors import BackendError
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.protocol import DownloadResult, DownloadsResponse, SignedUpload, StoredFile
from s3sign.server.tokens import mint_token
from s3sign.signing.presign import SignRequest
from s3sign.transfer.api import push
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.pull import Puller, PullOptions
from s3sign.transfer.report import SilentReporter
from tests.integration.conftest import SECRET, Backend

MiB = 1024 * 1024


def make_tree(root: Path) -> dict[str, bytes]:
    contents = {
        "a.txt": b"alpha\n",
        "logs/deep/b c.log": b"with a space\n" * 100,
        "ü/é.txt": b"unicode\n",
        "zero.bin": b"",
        "big.bin": os.urandom(12 * MiB),  # 3 parts of 5 MiB on the small-parts backend
    }
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return contents


def run_pull(backend: Backend, run: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    token = mint_token(run, 3600, SECRET.encode(), scopes=("read",))[0]
    env.update(S3SIGN_BACKEND=backend.url, S3SIGN_TOKEN=token, AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run(
        [sys.executable, "-m", "s3sign", "pull", run, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def pushed(small_parts: Backend, tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    source = tmp_path / "source"
    contents = make_tree(source)
    run = f"pull-{uuid.uuid4().hex[:8]}"
    env = {"S3SIGN_BACKEND": small_parts.url, "S3SIGN_TOKEN": small_parts.token(run)}
    assert push(run, ["."], base=source, env=env | {"HOME": "/"}).status == "success"
    return run, contents


def test_push_then_pull_gives_identical_bytes(
    small_parts: Backend, pushed: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    run, contents = pushed
    done = run_pull(small_parts, run, "-o", "back", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "success"
    assert sorted(f["fileName"] for f in report["files"]) == sorted(contents)
    back = tmp_path / "back"
    for name, data in contents.items():
        assert (back / name).read_bytes() == data, name
    leftovers = [p for p in back.rglob("*") if "partial" in p.name]
    assert leftovers == []
    (back / "a.txt").write_bytes(b"ALPHA\n")  # the same size, other bytes: fetched again
    again = run_pull(small_parts, run, "-o", "back", "--skip-existing", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    statuses = {f["fileName"]: f["status"] for f in json.loads(again.stdout)["files"]}
    assert statuses.pop("a.txt") == "uploaded"
    assert set(statuses.values()) == {"skipped"}  # checked by size and stored checksum
    assert (back / "a.txt").read_bytes() == contents["a.txt"]
    some = run_pull(small_parts, run, "logs", "-o", "some", "--manifest", "m.json", cwd=tmp_path)
    assert some.returncode == 0, some.stderr
    assert [p.name for p in (tmp_path / "some").rglob("*") if p.is_file()] == ["b c.log"]
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert [f["fileName"] for f in manifest["files"]] == ["logs/deep/b c.log"]
    dry = run_pull(small_parts, run, "-o", "dry", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert len(dry.stdout.splitlines()) == len(contents)
    assert not (tmp_path / "dry").exists()
    none = run_pull(small_parts, run, "nothing-like-this", "-o", "none", cwd=tmp_path)
    assert none.returncode == 2
    assert "no files of run" in none.stderr


def test_an_object_changed_in_the_store_is_refused_and_the_rest_arrive(
    small_parts: Backend, pushed: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    """The same size, other bytes, put straight into the store: its stored checksum no longer
    matches, so it is named and nothing lands at its name; the other files arrive."""
    run, contents = pushed
    store = small_parts.store
    key = f"runs/{run}/a.txt"
    signed = store.presigner().sign(SignRequest(store.bucket, key, size=6))
    replaced = requests.put(signed.url, data=b"ALPHA\n", headers=dict(signed.headers), timeout=60)
    assert replaced.status_code == 200
    done = run_pull(small_parts, run, "-o", "back", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "a.txt" in done.stderr
    assert not (tmp_path / "back" / "a.txt").exists()
    assert (tmp_path / "back" / "big.bin").read_bytes() == contents["big.bin"]


class HostileBackend:
    """Lists and signs what a compromised backend would: names that climb out, or answers
    for fewer files than were asked."""

    def __init__(self, url: str, names: list[str]) -> None:
        self.url, self.names = url, names

    def info(self) -> Any:
        raise BackendError("no /v1/info here")

    def downloads(self, run_id: str, names: list[str]) -> DownloadsResponse:
        get = SignedUpload("GET", self.url, {}, "2099-01-01T00:00:00Z")
        return DownloadsResponse(
            [DownloadResult(name, "ready", "k", get, size=6) for name in self.names]
        )


@pytest.mark.parametrize("name", ["../../escaped.txt", "/etc/escaped.txt", "link/escaped.txt"])
def test_names_from_a_hostile_backend_never_land_outside(
    small_parts: Backend, pushed: tuple[str, dict[str, bytes]], tmp_path: Path, name: str
) -> None:
    run, _ = pushed
    store = small_parts.store
    url = store.presigner().sign(SignRequest(store.bucket, f"runs/{run}/a.txt", method="GET")).url
    root = tmp_path / "deep" / "target"
    root.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    hostile = HostileBackend(url, [name])
    http = Connections(Transport(), "s3", 30)
    puller = Puller(cast(BackendClient, hostile), PullOptions(run_id=run), SilentReporter(), http)
    listed = [StoredFile(name, 6, "e")]
    report = puller.pull(listed, root, count=1, total_bytes=6)
    [outcome] = report.files
    assert outcome.status == "failed"
    assert "refused" in (outcome.error or "")
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/etc/escaped.txt").exists()


def test_a_backend_that_answers_for_fewer_files_fails_them_all(
    small_parts: Backend, pushed: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    run, _ = pushed
    hostile = HostileBackend("http://127.0.0.1:9/never", [])  # no answer at all
    http = Connections(Transport(), "s3", 30)
    puller = Puller(cast(BackendClient, hostile), PullOptions(run_id=run), SilentReporter(), http)
    listed = [StoredFile("a.txt", 6, "e"), StoredFile("b.txt", 6, "e")]
    report = puller.pull(listed, tmp_path, count=2, total_bytes=12)
    outcomes = sorted((f.file_name, f.status) for f in report.files)  # in finishing order
    assert outcomes == [("a.txt", "failed"), ("b.txt", "failed")]
    assert all("answered for 0 of 2 files" in (f.error or "") for f in report.files)
    assert not (tmp_path / "a.txt").exists()
