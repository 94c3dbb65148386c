"""Listing a run's open multipart uploads page by page, on each store: a seal aborts
every one of them, not only the first page's (ListMultipartUploads gives 1,000 at most)."""

from __future__ import annotations

import uuid

import pytest

from s3sign.http.transport import Transport
from s3sign.signing.store import ObjectStore
from tests.integration.conftest import Store


@pytest.mark.parametrize("which", ["seaweedfs", "moto"])
def test_open_uploads_are_listed_across_pages(request: pytest.FixtureRequest, which: str) -> None:
    store: Store = request.getfixturevalue("local_s3" if which == "seaweedfs" else "moto_s3")
    objects = ObjectStore(store.presigner, store.bucket, Transport())
    prefix = f"runs/pages-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}a.bin", f"{prefix}a.bin", f"{prefix}b.bin", f"{prefix}c/d.bin", f"{prefix}e"]
    started = {(key, objects.create_multipart(key, None)) for key in keys}  # a.bin: twice
    try:
        assert set(objects.open_uploads(prefix, page=2)) == started
        assert len(objects.open_uploads(prefix, page=2, most=3)) == 3
        assert set(objects.open_uploads(prefix)) == started
    finally:
        for key, upload_id in started:
            objects.abort_multipart(key, upload_id)
    assert objects.open_uploads(prefix, page=2) == []
