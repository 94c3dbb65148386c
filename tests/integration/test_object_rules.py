"""The bucket's own rules (sse, storage_class, object_tags) against the real `s3sign serve`
and each store: signed into every upload URL and multipart create, so each stored object
has them; a URL used without them is refused by the store (SeaweedFS checks signatures);
and complete refuses an object stored without them.

What SeaweedFS 4.48 does, seen here: it stores and reports ``AES256`` encryption, the
storage class and the tags (``x-amz-tagging-count`` on HEAD), for single PUTs and
multipart uploads alike; ``aws:kms`` without a KMS configured in SeaweedFS fails with 500
InternalError (AWS's KMS is proven only by the URL shape, held equal to botocore's in
tests/unit/test_sigv4.py). It has no bucket policy conditions, so "a policy that requires
them" is AWS's alone; the signature is what a worker cannot get around anywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path

import pytest
import requests

from s3sign.http.transport import Transport
from s3sign.objectrules import SSE, STORAGE_CLASS, TAG_COUNT
from s3sign.signing.presign import SignRequest
from s3sign.signing.store import ObjectStore
from s3sign.transfer.api import push
from tests.integration.conftest import Backend, Store, running_backend

MiB = 1024 * 1024


def with_rules(store: Store, log: Path) -> ContextManager[Backend]:
    """A backend whose settings ask for AES256, STANDARD_IA and two tags; multipart from
    5 MiB."""
    return running_backend(
        store,
        log,
        multipart_threshold="5MiB",
        part_size="5MiB",
        sse="AES256",
        storage_class="STANDARD_IA",
        object_tags="retention=short&team=ci",
    )


@pytest.fixture(scope="module", params=["seaweedfs", "moto"])
def ruled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    store: Store = request.getfixturevalue(
        "local_s3" if request.param == "seaweedfs" else "moto_s3"
    )
    log = tmp_path_factory.mktemp(f"rules-{request.param}") / "serve.log"
    with with_rules(store, log) as running:
        yield running


def objects(backend: Backend) -> ObjectStore:
    return ObjectStore(backend.store.presigner, backend.store.bucket, Transport())


def test_every_stored_object_has_the_bucket_rules(ruled: Backend, tmp_path: Path) -> None:
    run = f"rules-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.txt").write_text("a\n")
    (folder / "big.bin").write_bytes(b"x" * (6 * MiB))  # multipart
    env = {
        "S3SIGN_BACKEND": ruled.url,
        "S3SIGN_TOKEN": ruled.token(run),
        "HOME": str(tmp_path),
    }
    report = push(run, ["."], base=folder, env=env)
    assert report.status == "success", report
    for name in ("a.txt", "big.bin"):
        info = objects(ruled).head(f"runs/{run}/{name}")
        assert info is not None
        stored = dict(info.rule_headers)
        assert stored[SSE] == "AES256"
        assert stored[STORAGE_CLASS] == "STANDARD_IA"
        assert stored[TAG_COUNT] == "2"


def test_an_upload_url_used_without_the_rules_is_refused_by_the_store(
    local_s3: Store, tmp_path: Path
) -> None:
    """SeaweedFS checks the signature: the rules' headers are part of it."""
    with with_rules(local_s3, tmp_path / "serve.log") as backend:
        run = f"rules-{uuid.uuid4().hex[:8]}"
        body = {"files": [{"fileName": "a.txt", "fileSize": 2}]}
        answer = backend.post(f"/v1/runs/{run}/uploads", body, backend.token(run)).json()
        upload = answer["files"][0]["upload"]
        headers = upload["headers"]
        assert headers[SSE] == "AES256"
        assert headers["x-amz-tagging"] == "retention=short&team=ci"
        without = {name: value for name, value in headers.items() if name != SSE}
        refused = requests.put(upload["url"], data=b"a\n", headers=without, timeout=30)
        assert refused.status_code == 403
        assert "SignatureDoesNotMatch" in refused.text
        taken = requests.put(upload["url"], data=b"a\n", headers=headers, timeout=30)
        assert taken.status_code == 200


def test_complete_refuses_an_object_stored_without_the_rules(
    ruled: Backend, tmp_path: Path
) -> None:
    """An object put by other means (or by a store that ignores a rule) is not counted: it
    is reported rule_not_applied, and deleted as the caller's own upload."""
    run = f"rules-{uuid.uuid4().hex[:8]}"
    key = f"runs/{run}/plain.txt"
    store = ruled.store
    signed = store.presigner().sign(SignRequest(store.bucket, key, size=3))  # no rules
    put = requests.put(signed.url, data=b"abc", headers=dict(signed.headers), timeout=30)
    assert put.status_code == 200
    etag = put.headers["ETag"].strip('"')
    body = {"files": [{"key": key, "fileSize": 3, "etag": etag}]}
    result = ruled.post(f"/v1/runs/{run}/uploads/complete", body, ruled.token(run)).json()["files"][
        0
    ]
    assert result["status"] == "failed"
    assert result["error"]["code"] == "rule_not_applied"
    assert "encryption none, not AES256" in result["error"]["message"]
    assert objects(ruled).head(key) is None
