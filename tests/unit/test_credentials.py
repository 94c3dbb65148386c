"""Credentials from the environment without botocore; the chain for profiles; expiry."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from s3sign.config import Settings
from s3sign.credentials import Credentials, aws_endpoint_url, aws_region, mask, resolve_credentials
from s3sign.errors import ConfigError, CredentialsError, ExitCode
from s3sign.signing.presign import cap_expiry, resolve_endpoint_url


def test_env_fast_path_reads_keys_token_and_expiry() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE12345",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_CREDENTIAL_EXPIRATION": "2030-01-01T00:00:00Z",
    }
    credentials = resolve_credentials(env=env)
    assert credentials.source == "env"
    assert credentials.token == "token"
    assert credentials.expires_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_env_fast_path_does_not_import_botocore() -> None:
    code = (
        "import sys; from s3sign.credentials import resolve_credentials;"
        "resolve_credentials(env={'AWS_ACCESS_KEY_ID': 'a', 'AWS_SECRET_ACCESS_KEY': 'b'});"
        "print('botocore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_half_a_key_pair_is_an_error() -> None:
    with pytest.raises(CredentialsError, match="AWS_SECRET_ACCESS_KEY is not set"):
        resolve_credentials(env={"AWS_ACCESS_KEY_ID": "a"})


def test_no_credentials_anywhere_is_exit_4_with_hint() -> None:
    with pytest.raises(CredentialsError, match="no AWS credentials found") as info:
        resolve_credentials(env={})
    assert info.value.exit_code == ExitCode.CREDENTIALS
    assert "AWS_PROFILE" in info.value.hint
    assert "aws configure" in info.value.hint


def test_profile_from_shared_files(isolated_environment: Path) -> None:
    aws = isolated_environment / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        "[ci]\naws_access_key_id = AKIAPROFILE0001\naws_secret_access_key = s3cr3t\n"
    )
    (aws / "config").write_text(
        "[profile ci]\nregion = eu-south-1\n[default]\nregion = us-west-1\n"
    )
    credentials = resolve_credentials("ci")
    assert credentials.access_key == "AKIAPROFILE0001"
    assert credentials.source.startswith("botocore:")
    assert aws_region("ci", env={"HOME": str(isolated_environment)}) == "eu-south-1"
    assert aws_region(None, env={"HOME": str(isolated_environment)}) == "us-west-1"


def test_unknown_profile_is_a_credentials_error() -> None:
    with pytest.raises(CredentialsError, match="could not be loaded"):
        resolve_credentials("nope")


def test_region_env_order() -> None:
    assert aws_region(env={"AWS_REGION": "a-1", "AWS_DEFAULT_REGION": "b-1"}) == "a-1"
    assert aws_region(env={"AWS_DEFAULT_REGION": "b-1"}) == "b-1"
    assert aws_region(env={"HOME": "/nonexistent"}) is None


def test_endpoint_env() -> None:
    assert (
        aws_endpoint_url({"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_S3": "http://b"})
        == "http://b"
    )
    assert aws_endpoint_url({}) is None


def test_secrets_never_in_repr() -> None:
    credentials = Credentials("AKIAIOSFODNN7EXAMPLE", "topsecretvalue", token="sessiontoken")
    text = repr(credentials)
    assert "topsecretvalue" not in text
    assert "sessiontoken" not in text
    assert credentials.masked_access_key == "AKIA…MPLE"
    assert mask("short") == "…"


def test_expiry_is_capped_to_temporary_credentials() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    credentials = Credentials("a", "b", expires_at=now + timedelta(minutes=10))
    assert cap_expiry(300, credentials, now, strict=False) == (300, None)
    seconds, warning = cap_expiry(3600, credentials, now, strict=False)
    assert seconds == 600
    assert warning is not None
    assert "expire in 10m" in warning
    with pytest.raises(CredentialsError, match="expire in 10m"):
        cap_expiry(3600, credentials, now, strict=True)
    with pytest.raises(CredentialsError, match="expired 5m ago"):
        cap_expiry(60, credentials, now + timedelta(minutes=15), strict=False)
    assert cap_expiry(3600, Credentials("a", "b"), now, strict=True) == (3600, None)


def test_bad_expiration_variable() -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_CREDENTIAL_EXPIRATION": "soon",
    }
    with pytest.raises(CredentialsError, match="AWS_CREDENTIAL_EXPIRATION"):
        resolve_credentials(env=env)


def test_endpoint_from_aws_env_is_validated() -> None:
    assert (
        resolve_endpoint_url(Settings(), {"AWS_ENDPOINT_URL": "http://h:9000/"}) == "http://h:9000"
    )
    assert (
        resolve_endpoint_url(Settings(endpoint_url="http://a"), {"AWS_ENDPOINT_URL": "x"})
        == "http://a"
    )
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL"):
        resolve_endpoint_url(Settings(), {"AWS_ENDPOINT_URL_S3": "s3.example.com"})
