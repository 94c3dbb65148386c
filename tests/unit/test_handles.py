"""Upload handles: an upload id sealed to its key with the server secret."""

from __future__ import annotations

import pytest

from s3sign.keys import PolicyError
from s3sign.server.handles import UploadHandles

SECRET = b"s" * 32
KEY = "runs/r1/big.bin"
UPLOAD_ID = "2~Xy.Z_" + "a" * 1017  # S3's ids are up to 1,024 printable characters


def test_a_handle_opens_for_its_key_only() -> None:
    handles = UploadHandles(SECRET)
    handle = handles.seal(KEY, UPLOAD_ID)
    assert handle.startswith("s3u1.")
    assert UPLOAD_ID not in handle  # opaque, though not secret
    assert handles.open(KEY, handle) == UPLOAD_ID
    assert UploadHandles(SECRET).open(KEY, handle) == UPLOAD_ID  # another replica
    with pytest.raises(PolicyError, match="not given out for this file"):
        handles.open("runs/r1/other.bin", handle)
    with pytest.raises(PolicyError, match="not given out for this file"):
        UploadHandles(b"t" * 32).open(KEY, handle)


@pytest.mark.parametrize(
    "handle",
    [
        UPLOAD_ID,  # the bare id
        "s3u1..AAAAAAAAAAAAAAAAAAAAAA",
        "s3u1.bm90IGFuIGlk.short",
        "s3u1.bm90IGFuIGlk.AAAAAAAAAAAAAAAAAAAAAA\n",
        "s3u1.//8.AAAAAAAAAAAAAAAAAAAAAA",  # not base64url
        "s3u1._w.AAAAAAAAAAAAAAAAAAAAAA",  # base64url of a byte that is not UTF-8
    ],
)
def test_anything_else_is_refused(handle: str) -> None:
    handles = UploadHandles(SECRET)
    with pytest.raises(PolicyError) as refused:
        handles.open(KEY, handle)
    assert refused.value.code == "invalid_upload_id"


def test_a_changed_id_breaks_the_tag() -> None:
    handles = UploadHandles(SECRET)
    tag = handles.seal(KEY, "upload-1").split(".")[2]
    other = handles.seal(KEY, "upload-2").split(".")[1]
    with pytest.raises(PolicyError, match="not given out for this file"):
        handles.open(KEY, f"s3u1.{other}.{tag}")
