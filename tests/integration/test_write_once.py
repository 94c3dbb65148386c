"""Write-once runs (``overwrite: false``) against the real `s3sign serve` and each store:
S3 itself refuses a second write of a key (a signed ``If-None-Match: *`` on each PUT, and on
each multipart completion), push says ``already_exists`` and does not retry, and the
backend deletes nothing stored in such a run, whatever a token holder asks.

Both SeaweedFS 4.48 and moto 5.2 honour ``If-None-Match: *`` on PUT and on
CompleteMultipartUpload (412 PreconditionFailed), as AWS does; only SeaweedFS verifies
signatures, so that a URL used without the header is refused is proven on it alone.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from s3sign.http.transport import Transport
from s3sign.local.seaweed import LocalS3
from s3sign.server.tokens import mint_token
from s3sign.signing.presign import SignRequest
from s3sign.signing.store import ObjectStore
from s3sign.transfer import verify
from s3sign.transfer.api import push
from s3sign.transfer.jobs import Job
from tests.integration.conftest import SECRET, Backend, Store, running_backend
from tests.integration.faults import Faults, FaultyProxy
from tests.integration.moto_store import MotoS3

MiB = 1024 * 1024


@pytest.fixture(scope="module", params=["seaweedfs", "moto"])
def write_once(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """A write-once backend on each store, multipart from 5 MiB."""
    store: Store = request.getfixturevalue(
        "local_s3" if request.param == "seaweedfs" else "moto_s3"
    )
    log = tmp_path_factory.mktemp(f"write-once-{request.param}") / "serve.log"
    with running_backend(
        store, log, multipart_threshold="5MiB", part_size="5MiB", overwrite="false"
    ) as running:
        yield running


def token(run: str) -> str:
    return mint_token(run, 600, SECRET.encode())[0]


def objects(backend: Backend) -> ObjectStore:
    return ObjectStore(backend.store.presigner, backend.store.bucket, Transport())


def stored(backend: Backend, key: str) -> bytes:
    signed = backend.store.presigner().sign(SignRequest(backend.store.bucket, key, method="GET"))
    answer = requests.get(signed.url, timeout=30)
    assert answer.status_code == 200
    return answer.content


def tree(folder: Path, text: bytes, big: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_bytes(text)
    (folder / "big.bin").write_bytes(big)
    return folder


def test_a_stored_file_is_never_replaced(write_once: Backend, tmp_path: Path) -> None:
    run = f"once-{uuid.uuid4().hex[:8]}"
    env = {"S3SIGN_BACKEND": write_once.url, "S3SIGN_TOKEN": token(run), "HOME": str(tmp_path)}
    big = bytes(range(256)) * (6 * MiB // 256)
    first = tree(tmp_path / "first", b"first\n", big)
    assert push(run, ["."], base=first, env=env).status == "success"

    second = tree(tmp_path / "second", b"second\n", big[::-1])
    report = push(run, ["."], base=second, env=env)
    assert report.status == "error"
    outcomes = {outcome.file_name: outcome for outcome in report.files}
    for name in ("a.txt", "big.bin"):
        assert outcomes[name].status == "failed"
        assert "(already_exists)" in (outcomes[name].error or "")
        assert outcomes[name].attempts == 1  # not retried
    assert list(report.failures) == [outcomes["a.txt"].error]  # one reason in the summary
    assert stored(write_once, f"runs/{run}/a.txt") == b"first\n"
    assert hashlib.sha256(stored(write_once, f"runs/{run}/big.bin")).digest() == (
        hashlib.sha256(big).digest()
    )
    assert objects(write_once).open_uploads(f"runs/{run}/") == []

    again = push(run, ["."], base=first, env=env, skip_existing=True)
    assert again.status == "success"
    assert again.counts == {"skipped": 2}


def test_found_stored_while_it_was_sent_counts_as_skipped(
    write_once: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another push stored the same file between --skip-existing's question and this PUT:
    S3 refuses the PUT, and the file is asked about again: the same, so skipped."""
    run = f"once-{uuid.uuid4().hex[:8]}"
    env = {"S3SIGN_BACKEND": write_once.url, "S3SIGN_TOKEN": token(run), "HOME": str(tmp_path)}
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "same.txt").write_bytes(b"same\n")
    (theirs / "other.txt").write_bytes(b"theirs\n")
    assert push(run, ["."], base=theirs, env=env).status == "success"  # the other push
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "same.txt").write_bytes(b"same\n")
    (folder / "other.txt").write_bytes(b"mine\n")

    asked = verify.Verifier.skip_existing
    calls: list[int] = []

    def first_sees_nothing(
        self: verify.Verifier, jobs: list[Job], skipped: Callable[[Job], None]
    ) -> list[Job]:
        calls.append(len(jobs))
        return jobs if len(calls) == 1 else asked(self, jobs, skipped)

    monkeypatch.setattr(verify.Verifier, "skip_existing", first_sees_nothing)
    report = push(run, ["."], base=folder, env=env, skip_existing=True)
    assert calls == [2, 1, 1]  # then each file S3 refused, asked about again
    outcomes = {outcome.file_name: outcome for outcome in report.files}
    assert outcomes["same.txt"].status == "skipped"
    assert outcomes["other.txt"].status == "failed"
    assert "(already_exists)" in (outcomes["other.txt"].error or "")
    assert stored(write_once, f"runs/{run}/other.txt") == b"theirs\n"


def test_the_backend_deletes_nothing_in_a_write_once_run(write_once: Backend) -> None:
    """Neither abort (taking back a PUT by its ETag) nor complete (a declared size that does
    not match, with the stored object's ETag) deletes a stored file of a write-once run."""
    run = f"once-{uuid.uuid4().hex[:8]}"
    key = f"runs/{run}/kept.txt"
    objects(write_once).put(key, b"kept\n", "text/plain")
    info = objects(write_once).head(key)
    assert info is not None
    bearer = token(run)

    abort = write_once.post(
        f"/v1/runs/{run}/uploads/abort", {"key": key, "etag": info.etag}, bearer
    )
    assert abort.status_code == 403
    assert abort.json()["error"]["code"] == "write_once"
    complete = {"files": [{"key": key, "fileSize": 99, "etag": info.etag}]}
    [result] = write_once.post(f"/v1/runs/{run}/uploads/complete", complete, bearer).json()["files"]
    assert result["status"] == "failed"
    assert result["error"]["code"] == "size_mismatch"
    assert "write-once" in result["error"]["message"]
    assert stored(write_once, key) == b"kept\n"


def test_a_multipart_upload_loses_to_a_file_stored_meanwhile(write_once: Backend) -> None:
    """The key was free when the upload was created, and taken before it was completed:
    S3 refuses the completion, the upload is aborted, the other file stays."""
    run = f"once-{uuid.uuid4().hex[:8]}"
    bearer = token(run)
    size = 6 * MiB
    body = {"files": [{"fileName": "big.bin", "fileSize": size}]}
    [created] = write_once.post(f"/v1/runs/{run}/uploads", body, bearer).json()["files"]
    key, handle = created["key"], created["multipart"]["uploadId"]
    parts = {"key": key, "uploadId": handle, "fileSize": size, "partNumbers": [1, 2]}
    signed = write_once.post(f"/v1/runs/{run}/uploads/parts", parts, bearer).json()["parts"]
    etags = []
    for part, length in zip(signed, (5 * MiB, MiB), strict=True):
        answer = requests.put(part["url"], data=b"x" * length, headers=part["headers"], timeout=60)
        assert answer.status_code == 200
        etags.append({"partNumber": part["partNumber"], "etag": answer.headers["etag"]})
    objects(write_once).put(key, b"first\n", "text/plain")  # another writer, meanwhile

    complete = {"files": [{"key": key, "uploadId": handle, "fileSize": size, "parts": etags}]}
    [result] = write_once.post(f"/v1/runs/{run}/uploads/complete", complete, bearer).json()["files"]
    assert result["status"] == "failed"
    assert result["error"]["code"] == "already_exists"
    assert stored(write_once, key) == b"first\n"
    assert objects(write_once).open_uploads(f"runs/{run}/") == []  # its parts freed

    again = write_once.post(f"/v1/runs/{run}/uploads", body, bearer).json()["files"][0]
    assert again["status"] == "rejected"  # refused at once, before any part is sent
    assert again["error"]["code"] == "already_exists"


def test_the_store_refuses_a_write_once_url_used_without_its_header(
    local_s3: LocalS3, tmp_path: Path
) -> None:
    """The If-None-Match is signed: SeaweedFS refuses the URL without it (the signature), and
    with it once the key is taken. The backend says it is write-once in /v1/info."""
    with running_backend(local_s3, tmp_path / "serve.log", overwrite="false") as backend:
        assert requests.get(f"{backend.url}/v1/info", timeout=10).json()["overwrite"] is False
        run = f"once-{uuid.uuid4().hex[:8]}"
        body = {"files": [{"fileName": "a.txt", "fileSize": 3}]}
        [first] = backend.post(f"/v1/runs/{run}/uploads", body, token(run)).json()["files"]
        upload = first["upload"]
        assert upload["headers"]["If-None-Match"] == "*"
        stripped = {k: v for k, v in upload["headers"].items() if k != "If-None-Match"}
        put = requests.put(upload["url"], data=b"one", headers=upload["headers"], timeout=30)
        assert put.status_code == 200
        again = requests.put(upload["url"], data=b"two", headers=upload["headers"], timeout=30)
        assert again.status_code == 412
        without = requests.put(upload["url"], data=b"two", headers=stripped, timeout=30)
        assert without.status_code == 403
        assert b"SignatureDoesNotMatch" in without.content
        assert stored(backend, f"runs/{run}/a.txt") == b"one"


def test_on_a_store_that_ignores_if_none_match_each_key_is_looked_up(
    moto_s3: MotoS3, tmp_path: Path
) -> None:
    """moto checks no signature, so a proxy that drops If-None-Match makes it a store that
    ignores the header: the server finds out, warns, and looks each key up before signing."""
    faults = Faults(strip=("If-None-Match",))
    with (
        FaultyProxy(moto_s3.endpoint_url, faults) as proxy,
        running_backend(
            moto_s3, tmp_path / "serve.log", endpoint_url=proxy.url, overwrite="false"
        ) as backend,
    ):
        deadline = time.monotonic() + 30
        while "store" not in (info := requests.get(f"{backend.url}/v1/info", timeout=10).json()):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert info["store"]["ifNoneMatch"] is False
        assert "does not refuse If-None-Match" in backend.log.read_text()

        run = f"once-{uuid.uuid4().hex[:8]}"
        env = {"S3SIGN_BACKEND": backend.url, "S3SIGN_TOKEN": token(run), "HOME": str(tmp_path)}
        first = tree(tmp_path / "first", b"first\n", b"small big\n")
        assert push(run, ["a.txt"], base=first, env=env).status == "success"
        second = tree(tmp_path / "second", b"second\n", b"small big\n")
        [outcome] = push(run, ["a.txt"], base=second, env=env).files
        assert "(already_exists)" in (outcome.error or "")
        assert stored(backend, f"runs/{run}/a.txt") == b"first\n"
