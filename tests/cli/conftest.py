from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from s3sign.cli import app

Run = Callable[..., Result]


@pytest.fixture
def run() -> Run:
    """Invoke ``s3sign ARGS...`` in-process; stdout and stderr stay separate."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    return invoke
