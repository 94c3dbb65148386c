"""The embedded store refuses what SeaweedFS would silently ignore."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3sign.errors import UsageError
from s3sign.local.seaweed import LocalS3, free_ports


def test_bad_bucket_name_is_refused_before_starting(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid bucket name 'b'"):
        LocalS3(tmp_path, bucket="b")


def test_free_ports_are_distinct() -> None:
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert all(1024 <= port < 65536 for port in ports)
