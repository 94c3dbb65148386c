"""Commands run in-process with an injected environment (streams and variables), as httpie's
``Environment`` allows: what they read and write is the environment's, not the process's."""

from __future__ import annotations

import io
import json
from typing import Any

import jwt
import pytest

from s3sign.cli import run
from s3sign.cli.environment import Environment
from s3sign.server.tokens import AUDIENCE


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _environment(env: dict[str, str], stdin: bytes = b"", stderr: io.StringIO | None = None) -> Any:
    return Environment(
        stdin=io.BytesIO(stdin),
        stdout=io.StringIO(),
        stderr=stderr or io.StringIO(),
        env={"HOME": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true", **env},
    )


def test_settings_and_secrets_come_from_the_injected_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("S3SIGN_TOKEN_TTL", "2h")  # the process's: must not count
    monkeypatch.setenv("S3SIGN_SERVER_SECRET", "p" * 40)
    environment = _environment({"S3SIGN_SERVER_SECRET": "i" * 40, "S3SIGN_TOKEN_TTL": "30m"})
    assert run(["token", "run-1", "-o", "json"], environment) == 0
    document = json.loads(environment.stdout.getvalue())
    claims = jwt.decode(document["token"], "i" * 40, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == "run-1"
    assert claims["exp"] - claims["iat"] == 1800


def test_stdin_and_stderr_are_the_injected_streams() -> None:
    url = (
        "https://bucket.s3.eu-west-1.amazonaws.com/key?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Feu-west-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + "0" * 64
    )
    environment = _environment({}, stdin=url.encode() + b"\n")
    assert run(["explain", "--json"], environment) == 0
    assert json.loads(environment.stdout.getvalue())["bucket"] == "bucket"
    missing = _environment({})
    assert run(["sign"], missing) == 2
    assert "missing BUCKET" in missing.stderr.getvalue()
    assert missing.stdout.getvalue() == ""


def test_no_color_is_read_from_the_injected_variables() -> None:
    coloured = _environment({}, stderr=Terminal())
    assert run(["sign"], coloured) == 2
    assert "\033[31m" in coloured.stderr.getvalue()
    plain = _environment({"NO_COLOR": "1"}, stderr=Terminal())
    assert run(["sign"], plain) == 2
    assert plain.stderr.getvalue().startswith("s3sign: error: missing BUCKET")
