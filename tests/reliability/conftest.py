"""The reliability suite: faults between push and S3, a backend or store that dies, fuzzing.

CI runs it short (fewer files, fewer examples); ``S3SIGN_RELIABILITY=full``
runs it at full size, and ``S3SIGN_RELIABILITY=soak`` adds the bounded soak
test (``S3SIGN_SOAK_SECONDS``, 1800 by default).
"""

from __future__ import annotations

import os

import pytest

from tests.integration.conftest import backend, local_s3  # noqa: F401 - shared fixtures

MODE = os.environ.get("S3SIGN_RELIABILITY", "short")


def scale(short: int, full: int) -> int:
    """``short`` in CI, ``full`` when asked for."""
    return full if MODE in ("full", "soak") else short


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.integration)
