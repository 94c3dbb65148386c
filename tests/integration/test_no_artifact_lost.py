"""No artifact lost, on either store: the real ``serve`` in front of SeaweedFS and of moto.

moto answers differently from SeaweedFS (see moto_store.py): it checks no signature
and no checksum, and writes a composite checksum without ``-N``. Where an outcome
differs between the two, the test says which store and why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from s3sign.local.seaweed import free_ports
from s3sign.signing.presign import SignRequest
from s3sign.signing.store import ObjectStore
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import expand_paths
from s3sign.transfer.push import Pusher, PushOptions
from s3sign.transfer.report import FileOutcome, PushReport
from tests.integration.conftest import Backend, behind_faults
from tests.integration.faults import Faults
from tests.integration.test_push import push

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:10]}"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def on_moto(backend: Backend) -> bool:
    return "moto" in type(backend.store).__name__.lower()


def stored(backend: Backend, key: str) -> bytes | None:
    """An object's bytes, read with the store's own credentials; None when there is none."""
    signed = backend.store.presigner().sign(SignRequest(backend.store.bucket, key, method="GET"))
    response = requests.get(signed.url, timeout=60)
    return None if response.status_code == 404 else response.content


def status(backend: Backend, run: str, token: str, *files: dict[str, Any]) -> list[Any]:
    answer = backend.post(f"/v1/runs/{run}/uploads/status", {"files": list(files)}, token)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["files"])


# --- the read-only status call, and --skip-existing on it --------------------------------


def test_skip_existing_with_s3_unreachable_keeps_the_good_object(
    any_backend: Backend, tmp_path: Path
) -> None:
    """The repro: a changed file, --skip-existing, S3 unreachable for the worker only. The
    stored object is the earlier good upload: it must still be there afterwards."""
    run = run_id()
    (tmp_path / "a.txt").write_bytes(b"the good artifact\n")
    first = push(any_backend, run, "a.txt", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "a.txt").write_bytes(b"a changed artifact, longer\n")
    backend_port = any_backend.url.rsplit(":", 1)[1]
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"  # the worker's proxy to S3: nobody there
    again = push(
        any_backend,
        run,
        "a.txt",
        "--skip-existing",
        cwd=tmp_path,
        extra_env={"http_proxy": dead, "no_proxy": f"127.0.0.1:{backend_port}"},
    )
    assert again.returncode in (1, 5), again.stderr
    assert stored(any_backend, f"runs/{run}/a.txt") == b"the good artifact\n"


def test_status_says_missing_same_or_different_and_changes_nothing(
    any_backend: Backend,
) -> None:
    run = run_id()
    token = any_backend.token(run)
    body = b"stored body\n"
    sha = b64(hashlib.sha256(body).digest())
    created = any_backend.post(
        f"/v1/runs/{run}/uploads",
        {"files": [{"fileName": "a.txt", "fileSize": len(body), "sha256": sha}]},
        token,
    ).json()["files"][0]
    upload = created["upload"]
    assert requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30).ok
    md5 = hashlib.md5(body).hexdigest()
    other = b"other body!\n"  # as long, other bytes
    answers = status(
        any_backend,
        run,
        token,
        {"fileName": "a.txt", "fileSize": len(body), "sha256": sha},
        {"fileName": "a.txt", "fileSize": len(body), "etag": md5},
        {"fileName": "a.txt", "fileSize": len(body), "sha256": b64(hashlib.sha256(other).digest())},
        {"fileName": "a.txt", "fileSize": len(body) + 1, "sha256": sha},
        {"fileName": "a.txt", "fileSize": len(body)},
        {"fileName": "missing.txt", "fileSize": 1},
        {"fileName": "../escape", "fileSize": 1},
    )
    decided = [(a["status"], a.get("match")) for a in answers]
    if on_moto(any_backend):
        # moto verifies no SHA-256 on upload: a stored one proves nothing (and it keeps
        # none here), so the SHA-256 cannot show sameness; its ETag is the MD5 it computed.
        assert decided[0] == ("different", None)
        assert decided[2] == ("different", None)
    else:
        assert decided[0] == ("same", "sha256")
        assert decided[2] == ("different", "sha256")
    assert decided[1] == ("same", "etag")
    assert decided[3] == ("different", "size")
    assert decided[4] == ("same", "size")  # no digest given: the sizes alone, as asked
    assert decided[5] == ("missing", None)
    assert answers[6]["status"] == "rejected"
    assert answers[6]["error"]["code"] == "invalid_name"
    assert answers[0]["size"] == len(body)
    assert stored(any_backend, f"runs/{run}/a.txt") == body  # nothing was changed


def test_skip_existing_never_trusts_a_checksum_the_store_did_not_verify(
    any_backend: Backend, tmp_path: Path
) -> None:
    """An object whose stored SHA-256 claims the local file's digest but whose bytes differ
    (moto takes such a PUT; SeaweedFS refuses it): --skip-existing must upload the file."""
    run = run_id()
    local = b"the real content\n"
    (tmp_path / "a.txt").write_bytes(local)
    wrong = b"THE REAL CONTENT\n"
    presigner = any_backend.store.presigner()
    request = SignRequest(
        any_backend.store.bucket,
        f"runs/{run}/a.txt",
        size=len(wrong),
        sha256=b64(hashlib.sha256(local).digest()),  # claims the local file's digest
        headers=(("x-amz-sdk-checksum-algorithm", "SHA256"),),  # moto keeps it only then
    )
    signed = presigner.sign(request)
    answer = requests.put(signed.url, data=wrong, headers=dict(signed.headers), timeout=30)
    assert answer.ok == on_moto(any_backend), answer.text  # SeaweedFS verifies: BadDigest
    done = push(any_backend, run, "a.txt", "--skip-existing", "--checksum", "sha256", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 uploaded" in done.stderr, done.stderr
    assert "0 skipped" in done.stderr
    assert stored(any_backend, f"runs/{run}/a.txt") == local


def test_skip_existing_skips_what_is_provably_the_same(
    any_backend: Backend, tmp_path: Path
) -> None:
    """A single PUT and a multipart file, pushed again unchanged: both skipped on either
    store (SeaweedFS shows it by the SHA-256s it verified, moto by its MD5 ETags). Files
    changed with their sizes kept are uploaded again: on moto, where auto binds no
    checksum, the sizes alone must not decide (only --checksum none asks for that)."""
    run = run_id()
    (tmp_path / "small.txt").write_bytes(b"small\n")
    (tmp_path / "edited.txt").write_bytes(b"first\n")
    many = tmp_path / "many"  # enough files for the backend to list rather than HEAD each
    many.mkdir()
    for index in range(24):
        (many / f"{index:02}.txt").write_bytes(f"file {index}\n".encode())
    big = os.urandom(12 * MiB)  # 3 parts of 5 MiB
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "big-edited.bin").write_bytes(big)
    first = push(any_backend, run, ".", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "edited.txt").write_bytes(b"later\n")  # as long
    (tmp_path / "big-edited.bin").write_bytes(big[:-1] + b"!")
    again = push(any_backend, run, ".", "--skip-existing", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    statuses = {f["fileName"]: f["status"] for f in json.loads(again.stdout)["files"]}
    assert {statuses.pop(f"many/{index:02}.txt") for index in range(24)} == {"skipped"}
    assert statuses == {
        "small.txt": "skipped",
        "big.bin": "skipped",
        "edited.txt": "uploaded",
        "big-edited.bin": "uploaded",
    }
    assert stored(any_backend, f"runs/{run}/edited.txt") == b"later\n"
    by_size = push(any_backend, run, ".", "--skip-existing", "--checksum", "none", cwd=tmp_path)
    assert "0 uploaded" in by_size.stderr, by_size.stderr  # as asked: the sizes alone


# --- complete deletes only the worker's own upload ---------------------------------------


def test_a_multipart_object_is_judged_by_its_composite_checksum_on_any_store(
    any_backend: Backend, tmp_path: Path
) -> None:
    """push --json of a multipart file: the backend knows it assembled the object from
    parts, so it compares the composite, however the store writes it (moto: no ``-N``),
    and never the whole file's SHA-256. The object stays, and complete reports ``-N``."""
    run = run_id()
    data = os.urandom(12 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    done = push(any_backend, run, "big.bin", "--json", "--checksum", "sha256", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [outcome] = json.loads(done.stdout)["files"]
    assert outcome["status"] == "uploaded", outcome
    assert outcome["sha256"] == b64(hashlib.sha256(data).digest())
    assert stored(any_backend, f"runs/{run}/big.bin") == data
    head = ObjectStore(any_backend.store.presigner, any_backend.store.bucket).head(
        f"runs/{run}/big.bin"
    )
    assert head is not None
    assert head.checksum is not None
    assert head.checksum.endswith("-3") != on_moto(any_backend)  # moto leaves out the count


def test_complete_keeps_an_object_that_is_not_the_workers_upload(any_backend: Backend) -> None:
    """Declared sizes that differ: without the worker's ETag, or with another upload's, the
    stored object is kept and complete says so; with its own ETag, it is deleted."""
    run = run_id()
    token = any_backend.token(run)
    body = b"0123456789"
    created = any_backend.post(
        f"/v1/runs/{run}/uploads", {"files": [{"fileName": "x.bin", "fileSize": 10}]}, token
    ).json()["files"][0]
    upload = created["upload"]
    response = requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30)
    assert response.ok

    def complete(**extra: str) -> dict[str, Any]:
        item = {"key": created["key"], "fileSize": 11, **extra}
        answer = any_backend.post(f"/v1/runs/{run}/uploads/complete", {"files": [item]}, token)
        return dict(answer.json()["files"][0])

    for extra in ({}, {"etag": hashlib.md5(b"another upload").hexdigest()}):
        kept = complete(**extra)
        assert (kept["status"], kept["error"]["code"]) == ("failed", "size_mismatch")
        assert "kept" in kept["error"]["message"]
        assert stored(any_backend, created["key"]) == body
    deleted = complete(etag=response.headers["ETag"])
    assert "your upload was deleted" in deleted["error"]["message"]
    assert stored(any_backend, created["key"]) is None


# --- a failed upload leaves nothing unlike the file --------------------------------------


class Rewriter:
    """A reporter that rewrites the file (same size, other bytes) once its upload has
    sent its first bytes: the rest of the PUT reads the new content."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = False

    def advanced(self, name: str, delta: int) -> None:
        if not self.done and delta > 0:
            self.done = True
            size = self.path.stat().st_size
            with self.path.open("r+b") as handle:
                handle.write(b"\xff" * size)

    def __getattr__(self, name: str) -> Any:
        return lambda *args: None  # the other reporter events


@pytest.mark.parametrize("checksum", ["none", "auto"])
def test_a_file_rewritten_during_its_put_leaves_no_torn_object(
    any_backend: Backend, tmp_path: Path, checksum: str
) -> None:
    """With no checksum bound (``none``; ``auto`` on moto, which verifies none), the store
    takes a body that is half old, half new. The push fails the file, and takes back
    what its own PUT stored: no object unlike the file at one instant is left."""
    run = run_id()
    path = tmp_path / "log.bin"
    path.write_bytes(os.urandom(4 * MiB))  # one PUT (under 5 MiB), sent in several blocks
    files = list(expand_paths([str(path)], tmp_path).files)
    client = BackendClient(any_backend.url, any_backend.token(run))
    options = PushOptions(run_id=run, checksum=checksum)  # type: ignore[arg-type]
    report: PushReport = Pusher(client, options, Rewriter(path)).push(files)
    outcome: FileOutcome = report.files[0]
    if checksum == "auto" and not on_moto(any_backend):
        # SeaweedFS verifies the SHA-256 that auto binds: it refused the torn body itself.
        assert "S3 refused the body" in (outcome.error or ""), outcome
    else:
        assert "changed while it was being uploaded" in (outcome.error or ""), outcome
        assert "was deleted" in (outcome.error or ""), outcome
    assert outcome.status == "failed"
    assert stored(any_backend, f"runs/{run}/log.bin") is None


def test_a_body_changed_on_the_way_is_caught_on_either_store(
    any_backend: Backend, tmp_path: Path
) -> None:
    """A middlebox flips a byte of one PUT's body. SeaweedFS refuses it (the SHA-256 that
    auto binds); moto stores it, and push sees that the ETag moto computed is not the
    file's MD5: the file fails and what was stored is taken back. The others upload."""
    run = run_id()
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_bytes(f"{name} body\n".encode())
    store = any_backend.store
    faults = Faults(corrupt={f"PUT /{store.bucket}/runs/{run}/b.txt": 1})
    with behind_faults(store, faults, tmp_path) as backend:
        done = push(backend, run, ".", "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    files = {f["fileName"]: f for f in json.loads(done.stdout)["files"]}
    assert [files[n]["status"] for n in ("a.txt", "b.txt", "c.txt")] == [
        "uploaded",
        "failed",
        "uploaded",
    ]
    if on_moto(any_backend):
        assert "its ETag is not their MD5" in files["b.txt"]["error"]
        assert "was deleted" in files["b.txt"]["error"]
    else:
        assert "S3 refused the body" in files["b.txt"]["error"]
    assert stored(any_backend, f"runs/{run}/b.txt") is None
    assert stored(any_backend, f"runs/{run}/c.txt") == b"c.txt body\n"


# --- names that are one key ----------------------------------------------------------------


@pytest.mark.parametrize("skip", [False, True], ids=["plain", "skip-existing"])
def test_two_names_that_are_one_key_fail_up_front(
    any_backend: Backend, tmp_path: Path, skip: bool
) -> None:
    composed = unicodedata.normalize("NFC", "café.txt")
    decomposed = unicodedata.normalize("NFD", "café.txt")
    (tmp_path / composed).write_bytes(b"composed\n")
    (tmp_path / decomposed).write_bytes(b"decomposed\n")
    (tmp_path / "other.txt").write_bytes(b"other\n")
    run = run_id()
    args = ["--skip-existing"] if skip else []
    done = push(any_backend, run, ".", "--json", *args, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    files = {f["fileName"]: f for f in json.loads(done.stdout)["files"]}
    assert files["other.txt"]["status"] == "uploaded"
    for name, twin in ((composed, decomposed), (decomposed, composed)):
        assert files[name]["status"] == "failed"
        error = files[name]["error"] or ""
        assert ascii(name) in error, error
        assert ascii(twin) in error
        assert "same key" in error
    assert stored(any_backend, f"runs/{run}/{composed}") is None  # neither was sent


# --- what the store enforces ----------------------------------------------------------------


def test_serve_finds_out_what_the_store_enforces_and_cleans_up(any_backend: Backend) -> None:
    info = requests.get(f"{any_backend.url}/v1/info", timeout=30).json()
    if on_moto(any_backend):
        expected = dict.fromkeys(("size", "contentType", "sha256", "md5", "signature"), False)
        expected |= {"etagIsMd5": True, "keepsSha256": False, "ifNoneMatch": True}
    else:
        expected = dict.fromkeys(("size", "contentType", "sha256", "md5", "signature"), True)
        expected |= {"etagIsMd5": True, "keepsSha256": True, "ifNoneMatch": True}
    assert info["store"] == expected
    assert "the object store enforces" in any_backend.log.read_text()
    listed = ObjectStore(any_backend.store.presigner, any_backend.store.bucket).list_objects(
        "runs/.s3sign/", ""
    )
    assert listed == ([], None)  # every scratch object was deleted again


def test_doctor_reports_what_each_store_enforces(
    any_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from s3sign.cli import app

    store = any_backend.store
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", store.credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", store.credentials.secret_key)
    monkeypatch.setenv("AWS_REGION", store.region)
    args = ["--bucket", store.bucket, "--endpoint-url", store.endpoint_url, "--backend"]
    done = CliRunner().invoke(app, ["doctor", *args, any_backend.url])
    assert done.exit_code == 0, done.stdout
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line[:1] != " "}
    if on_moto(any_backend):
        rules = "enforces If-None-Match; not size, content type, SHA-256, Content-MD5, signature"
        assert "only sizes vouch for the bytes" in lines["store"]
    else:
        rules = "enforces size, content type, SHA-256, Content-MD5, signature, If-None-Match"
    assert f"store        {rules}; ETag is the MD5" in lines["store"]
    assert f"its store {rules}" in lines["backend"]


def test_push_auto_binds_what_the_store_enforces(any_backend: Backend, tmp_path: Path) -> None:
    run = run_id()
    (tmp_path / "a.txt").write_bytes(b"auto\n")
    manifest = tmp_path / "manifest.json"
    done = push(any_backend, run, "a.txt", "--manifest", str(manifest), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [outcome] = json.loads(manifest.read_text())["files"]
    notice = "the object store verifies no checksum on upload"
    if on_moto(any_backend):  # enforces none: the ETag checks each upload; told once
        assert outcome["sha256"] is None
        assert done.stderr.count(notice) == 1, done.stderr
        assert "checked by its ETag instead" in done.stderr
        [notice_kept] = json.loads(manifest.read_text())["notices"]  # --json shows it too
        assert "checked by its ETag instead" in notice_kept
    else:
        assert outcome["sha256"] == b64(hashlib.sha256(b"auto\n").digest())
        assert notice not in done.stderr
        assert "notices" not in json.loads(manifest.read_text())
