from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from s3sign.cli import app
from tests.conftest import EXAMPLE_SECRET_KEY

Run = Callable[..., Result]


SECRETS = re.compile(r"X-Amz-Signature=|X-Amz-Credential=|Bearer |" + re.escape(EXAMPLE_SECRET_KEY))
# Commands whose stdout is a signed URL or a token by design.
PRINTS_A_SECRET = ("sign", "token", "link")


@pytest.fixture
def run() -> Run:
    """Invoke ``s3sign ARGS...`` in-process; stdout and stderr stay separate.

    Every run is checked for signatures, credentials, bearer tokens and the
    secret key: never on stderr, and on stdout only from ``sign`` and ``token``.
    """
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        result = runner.invoke(app, list(args), input=input)
        assert not SECRETS.search(result.stderr), result.stderr
        command = next((arg for arg in args if not arg.startswith("-")), "")
        if command not in PRINTS_A_SECRET:
            assert not SECRETS.search(result.stdout), result.stdout
        return result

    return invoke
