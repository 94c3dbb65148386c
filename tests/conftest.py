"""Every test runs with its own HOME and working directory and no AWS_*/S3SIGN_* variables.

A developer's own credentials, profiles or config can never leak into a test,
and the AWS credential chain never reaches for the instance-metadata address.
Ctrl-C works as at a terminal, also where the tests were started with SIGINT ignored.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """A runner may start the tests with SIGINT ignored (a background job of a shell without
    job control), and an ignored signal stays ignored in every child: the tests of Ctrl-C
    would then test nothing. Python's own handler here makes it the default in children."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


EXAMPLE_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean HOME, cwd and environment for every test."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "S3SIGN_")) or name in ("XDG_CONFIG_HOME", "NO_COLOR"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@pytest.fixture
def env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS's documentation example keys and region, in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", EXAMPLE_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EXAMPLE_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
