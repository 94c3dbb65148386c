"""The digests push binds into URLs: one pass gives a file's SHA-256 and its parts'."""

from __future__ import annotations

import base64
import hashlib
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from s3sign.digests import composite_sha256, multipart_etag, range_digest, sha256_with_parts


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 1_200_000), count=st.integers(1, 40), slack=st.integers(-1, 3))
def test_one_pass_gives_the_whole_and_every_part(size: int, count: int, slack: int) -> None:
    # Parts sized to give about ``count`` of them, the last one whole, short or a byte:
    # every boundary case, without a million one-byte parts to read one by one.
    part_size = max(1, -(-size // count) + slack)
    data = hashlib.shake_256(str(size).encode()).digest(size) if size else b""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "f"
        path.write_bytes(data)
        parts: list[tuple[int, str]] = []
        whole = sha256_with_parts(str(path), part_size, lambda n, d: parts.append((n, d)))
        slices = [data[i : i + part_size] for i in range(0, size, part_size)]
        assert whole == b64_sha256(data)
        assert parts == [(n, b64_sha256(chunk)) for n, chunk in enumerate(slices, 1)]
        for number, digest in parts:  # the same digests each part's own read gives
            offset = (number - 1) * part_size
            length = min(part_size, size - offset)
            assert range_digest(str(path), offset, length, "sha256") == digest


def test_composite_is_the_sha256_of_the_parts_sha256s_and_their_count() -> None:
    parts = [b"a" * 10, b"b" * 3]
    joined = hashlib.sha256(b"a" * 10).digest() + hashlib.sha256(b"b" * 3).digest()
    expected = f"{base64.b64encode(hashlib.sha256(joined).digest()).decode()}-2"
    assert composite_sha256([b64_sha256(part) for part in parts]) == expected


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 700_000), part_size=st.integers(1, 300_000))
def test_the_multipart_etag_is_the_md5_of_the_parts_md5s(size: int, part_size: int) -> None:
    data = hashlib.shake_256(str(size).encode()).digest(size) if size else b""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "f"
        path.write_bytes(data)
        slices = [data[i : i + part_size] for i in range(0, size, part_size)]
        joined = b"".join(hashlib.md5(chunk).digest() for chunk in slices)
        expected = f"{hashlib.md5(joined).hexdigest()}-{len(slices)}"
        assert multipart_etag(str(path), part_size) == expected
