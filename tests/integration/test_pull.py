"""`s3sign pull` against the real serve and SeaweedFS: a pushed tree comes back identical,
a changed object is refused with nothing at its name, and names from a hostile backend
never land outside the folder."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import requests

from s3sign.errors import BackendError
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.local.seaweed import LocalS3
from s3sign.protocol import DownloadResult, DownloadsResponse, SignedUpload, StoredFile
from s3sign.server.tokens import mint_token
from s3sign.signing.presign import SignRequest
from s3sign.transfer.api import push
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.download import REPLACED
from s3sign.transfer.pull import Puller, PullOptions
from s3sign.transfer.report import SilentReporter
from tests.integration.conftest import SECRET, Backend, behind_faults
from tests.integration.faults import Faults

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


def reader_env(backend: Backend, run: str) -> dict[str, str]:
    """The environment of a job that reads ``run`` back: the backend and a read token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    token = mint_token(run, 3600, SECRET.encode(), scopes=("read",))[0]
    env.update(S3SIGN_BACKEND=backend.url, S3SIGN_TOKEN=token, AWS_EC2_METADATA_DISABLED="true")
    return env


def as_reader(
    backend: Backend, run: str, *args: str, cwd: Path | None = None, **more: Any
) -> subprocess.CompletedProcess[str]:
    """``s3sign ARGS`` as a job that reads ``run`` back; ``more``: for subprocess.run."""
    return subprocess.run(
        [sys.executable, "-m", "s3sign", *args],
        cwd=cwd,
        env=reader_env(backend, run),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **more,
    )


def run_pull(backend: Backend, run: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return as_reader(backend, run, "pull", run, *args, cwd=cwd)


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


def test_files_from_takes_names_as_written_and_each_must_be_there(
    small_parts: Backend, pushed: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    run, contents = pushed
    names = "a.txt\nlogs\nmissing.txt\n"
    done = as_reader(
        small_parts,
        run,
        "pull",
        run,
        "--files-from",
        "-",
        "-o",
        "back",
        "--json",
        cwd=tmp_path,
        input=names,
    )
    assert done.returncode == 1, done.stderr
    assert f"missing.txt: not in run {run}" in done.stderr
    report = {f["fileName"]: f for f in json.loads(done.stdout)["files"]}
    assert report["missing.txt"]["status"] == "failed"
    assert report["missing.txt"]["error"].startswith("not_found")
    assert {name for name, f in report.items() if f["status"] == "uploaded"} == {
        "a.txt",
        "logs/deep/b c.log",
    }
    back = tmp_path / "back"
    assert sorted(str(p.relative_to(back)) for p in back.rglob("*") if p.is_file()) == [
        "a.txt",
        "logs/deep/b c.log",
    ]
    assert (back / "logs/deep/b c.log").read_bytes() == contents["logs/deep/b c.log"]


def test_a_file_too_big_to_write_here_fails_alone_and_leaves_nothing(
    small_parts: Backend, pushed: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    """Writing is refused past 1 MiB (RLIMIT_FSIZE, as a full disk or a quota would): the
    12 MiB file fails with the reason and no partial file, the others arrive, exit 1."""
    run, contents = pushed

    def limited() -> None:  # pragma: no cover - runs in the child before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (MiB, MiB))

    done = as_reader(small_parts, run, "pull", run, "-o", "back", cwd=tmp_path, preexec_fn=limited)
    assert done.returncode == 1, done.stderr
    assert "big.bin" in done.stderr
    assert "File too large" in done.stderr
    back = tmp_path / "back"
    assert not (back / "big.bin").exists()
    assert (back / "a.txt").read_bytes() == contents["a.txt"]
    assert [p.name for p in back.rglob("*") if "partial" in p.name] == []


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


def test_each_store_gives_back_what_was_pushed(any_backend: Backend, tmp_path: Path) -> None:
    """On SeaweedFS and on moto (whose answers differ: its ETags, checksums, Range and
    If-Match handling), the tree comes back whole, the multipart file in ranges."""
    run, source = f"each-{uuid.uuid4().hex[:8]}", tmp_path / "source"
    contents = make_tree(source)
    env = {"S3SIGN_BACKEND": any_backend.url, "S3SIGN_TOKEN": any_backend.token(run), "HOME": "/"}
    assert push(run, ["."], base=source, env=env).status == "success"
    done = run_pull(any_backend, run, "-o", "back", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "success"
    for name, data in contents.items():
        assert (tmp_path / "back" / name).read_bytes() == data, name


class Recording(Connections):
    """The connections to S3, with each GET's Range and the status it was answered with."""

    def __init__(self) -> None:
        super().__init__(Transport(), "s3", 60)
        self.gets: list[tuple[str, int]] = []

    def fetch(
        self, url: str, headers: Any, sink: Any, limit: int, wanted: int | None = None
    ) -> Any:
        response = super().fetch(url, headers, sink, limit, wanted)
        self.gets.append((headers.get("Range", ""), response.status))
        return response


def test_a_tree_at_the_issue_size_round_trips(backend: Backend, tmp_path: Path) -> None:
    """Nested folders, unicode, spaces, an empty file and a 150 MiB multipart file: `ls
    --json` gives each its size and checksum, and `pull` brings back the same bytes, the big
    file in ranges of its parts."""
    source, run = tmp_path / "source", f"size-{uuid.uuid4().hex[:8]}"
    small = {"a/b/c/deep.txt": b"deep\n", "ünï cødé/名前 with space.txt": b"hi\n" * 9, "empty": b""}
    for name, data in small.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    big, digest = source / "big" / "150.bin", hashlib.sha256()
    big.parent.mkdir()
    with big.open("wb") as handle:
        for _ in range(150):
            block = os.urandom(MiB)
            digest.update(block)
            handle.write(block)
    env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_TOKEN": backend.token(run)}
    assert push(run, ["."], base=source, env=env | {"HOME": "/"}).status == "success"
    listed = as_reader(backend, run, "ls", run, "--json")
    assert listed.returncode == 0, listed.stderr
    files = {f["fileName"]: f for f in json.loads(listed.stdout)["files"]}
    assert sorted(files) == sorted([*small, "big/150.bin"])
    for name, data in small.items():
        assert files[name]["size"] == len(data)
        assert files[name]["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert files["big/150.bin"]["size"] == 150 * MiB
    assert files["big/150.bin"]["sha256"].endswith("-10")  # ten parts of 16 MiB
    answered = backend.metric("s3sign_response_body_bytes_total")
    done = run_pull(backend, run, "-o", "back", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answered = backend.metric("s3sign_response_body_bytes_total") - answered
    assert 0 < answered < 64 * 1024  # URLs and listings: no artifact's bytes pass the backend
    back = tmp_path / "back"
    for name, data in small.items():
        assert (back / name).read_bytes() == data
    with (back / "big/150.bin").open("rb") as handle:
        assert hashlib.file_digest(handle, "sha256").digest() == digest.digest()
    assert [p for p in back.rglob("*") if "partial" in p.name] == []
    token = reader_env(backend, run)["S3SIGN_TOKEN"]
    http, client = Recording(), BackendClient(backend.url, token)
    puller = Puller(client, PullOptions(run_id=run), SilentReporter(), http)
    stored = StoredFile("big/150.bin", 150 * MiB, "e")
    report = puller.pull([stored], tmp_path / "again", count=1, total_bytes=150 * MiB)
    assert report.count("uploaded") == 1
    part = 16 * MiB
    asked = sorted(http.gets, key=lambda get: int(get[0].split("=")[1].split("-")[0]))
    ends = [min((n + 1) * part, 150 * MiB) - 1 for n in range(10)]
    assert asked == [(f"bytes={n * part}-{end}", 206) for n, end in enumerate(ends)]


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_pull_cut_short_leaves_no_file_half_written(
    local_s3: LocalS3, tmp_path: Path, signal_number: int, code: int
) -> None:
    """SIGTERM (a cancelled job) or Ctrl-C while the big file's ranges hang in the store:
    the pull ends at once with 143 or 130, and nothing is left at its name or half written."""
    run = f"cut-{uuid.uuid4().hex[:8]}"
    faults = Faults(hold={f"GET /{local_s3.bucket}/runs/{run}/big.bin": 60.0})
    with behind_faults(local_s3, faults, tmp_path) as backend:
        make_tree(tmp_path / "source")
        env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_TOKEN": backend.token(run)}
        assert (
            push(run, ["."], base=tmp_path / "source", env=env | {"HOME": "/"}).status == "success"
        )
        back = tmp_path / "back"
        pulling = subprocess.Popen(
            [sys.executable, "-m", "s3sign", "pull", run, "-o", str(back), "--concurrency", "2"],
            env=reader_env(backend, run),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not [p for p in back.glob(".big.bin.*")] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert list(back.glob(".big.bin.*")), "the big file never started"
            time.sleep(0.5)  # its ranges are asked for, and held
            pulling.send_signal(signal_number)
            _, stderr = pulling.communicate(timeout=20)
        finally:
            pulling.kill()
    assert pulling.returncode == code, stderr
    assert not (back / "big.bin").exists()
    assert [p.name for p in back.rglob("*") if "partial" in p.name] == []


def test_an_object_replaced_while_its_ranges_come_fails_and_leaves_nothing(
    small_parts: Backend, pushed: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    """The ranges after the first ask with If-Match on the ETag they started with: the
    store refuses them (412) once the object was replaced, rather than mix two objects."""
    run, contents = pushed
    store, key = small_parts.store, f"runs/{run}/big.bin"

    class Replacing(Recording):
        def fetch(self, url: str, headers: Any, sink: Any, limit: int, wanted: Any = None) -> Any:
            response = super().fetch(url, headers, sink, limit, wanted)
            if len(self.gets) == 1:
                other = os.urandom(len(contents["big.bin"]))
                signed = store.presigner().sign(SignRequest(store.bucket, key, size=len(other)))
                requests.put(signed.url, data=other, headers=dict(signed.headers), timeout=60)
            return response

    http, root = Replacing(), tmp_path / "out"
    client = BackendClient(small_parts.url, reader_env(small_parts, run)["S3SIGN_TOKEN"])
    puller = Puller(client, PullOptions(run, concurrency=1), SilentReporter(), http)
    size = len(contents["big.bin"])
    report = puller.pull([StoredFile("big.bin", size, "e")], root, count=1, total_bytes=size)
    [outcome] = report.files
    assert (outcome.status, outcome.error) == ("failed", REPLACED)
    assert [status for _, status in http.gets] == [206, 412]
    assert list(root.iterdir()) == []


class HostileBackend:
    """Lists and signs what a compromised backend would: names that climb out, or answers
    for fewer files than were asked."""

    def __init__(self, url: str, names: list[str]) -> None:
        self.url, self.names = url, names

    def info(self) -> Any:
        raise BackendError("no /v1/info here")

    def downloads(self, run_id: str, names: list[str], lookup: bool = True) -> DownloadsResponse:
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
