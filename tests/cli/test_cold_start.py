"""``sign`` starts fast because it imports only what that run needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY

HEAVY = ("boto3", "botocore", "requests", "urllib3", "yaml", "rich", "pydantic", "fastapi")


def _imported_modules(*args: str) -> set[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": EXAMPLE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": EXAMPLE_SECRET_KEY,
        "AWS_REGION": "eu-west-1",
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "s3sign", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


@pytest.mark.parametrize(
    "args",
    [("sign", "b-1", "k", "--size", "5"), ("sign", "s3://b-1/k", "--method", "get", "-o", "json")],
)
def test_sign_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    modules = _imported_modules(*args)
    assert "s3sign.signing.presign" in modules  # the measurement itself works
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == []


def test_yaml_is_imported_only_with_a_config_file() -> None:
    Path("s3sign.yaml").touch()  # in the test's own working directory
    assert "yaml" in _imported_modules("sign", "b-1", "k", "--size", "5")
