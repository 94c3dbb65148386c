"""A real SeaweedFS on free 127.0.0.1 ports for the whole session, stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from s3sign.local import LocalS3


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    store = LocalS3(tmp_path_factory.mktemp("seaweedfs"), bucket="s3sign-test")
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def s3_env(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> LocalS3:
    """The environment a user of the local store would have: its keys, region and endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_s3.credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", local_s3.credentials.secret_key)
    monkeypatch.setenv("AWS_REGION", local_s3.region)
    monkeypatch.setenv("S3SIGN_ENDPOINT_URL", local_s3.endpoint_url)
    return local_s3
