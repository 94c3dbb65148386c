"""``--provider`` presets: each one's URL shape equals botocore's for the same endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from s3sign.config import load_settings
from s3sign.errors import ConfigError
from s3sign.providers import PROVIDERS
from s3sign.signing.presign import Presigner, SignRequest
from tests.cli.conftest import Run
from tests.conftest import EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY
from tests.unit.test_sigv4 import _botocore_url

KEYS = {"AWS_ACCESS_KEY_ID": EXAMPLE_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": EXAMPLE_SECRET_KEY}
MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ENDPOINTS = {
    "aws": None,
    "r2": "https://0123456789abcdef.r2.cloudflarestorage.com",
    "gcs": None,
    "b2": "https://s3.us-west-004.backblazeb2.com",
    "minio": "http://127.0.0.1:9000",
    "seaweedfs": "http://127.0.0.1:8333",
    "custom": "https://objects.example.com",
}
SHAPES = {
    "aws": "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b.txt?",
    "r2": "https://0123456789abcdef.r2.cloudflarestorage.com/my-bucket/a%20b.txt?",
    "gcs": "https://storage.googleapis.com/my-bucket/a%20b.txt?",
    "b2": "https://s3.us-west-004.backblazeb2.com/my-bucket/a%20b.txt?",
    "minio": "http://127.0.0.1:9000/my-bucket/a%20b.txt?",
    "seaweedfs": "http://127.0.0.1:8333/my-bucket/a%20b.txt?",
    "custom": "https://objects.example.com/my-bucket/a%20b.txt?",
}
REGIONS = {"aws": "eu-west-1", "r2": "auto", "gcs": "auto", "b2": "us-west-004"}


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_preset_url_equals_botocore_with_the_same_endpoint(name: str) -> None:
    env = {**KEYS, "AWS_REGION": "eu-west-1"}  # presets other than aws must not take it
    settings = load_settings({"provider": name, "endpoint_url": ENDPOINTS[name]}, env=env)
    presigner = Presigner.from_settings(settings, env)
    assert presigner.region == REGIONS.get(name, "us-east-1")
    request = SignRequest("my-bucket", "a b.txt", size=5)
    ours = presigner.sign(request, MOMENT).url
    assert ours.startswith(SHAPES[name])
    style = "virtual" if name == "aws" else "path"
    endpoint = presigner.endpoint_url
    assert ours == _botocore_url(request, presigner.region, endpoint, style, None, MOMENT)


def test_what_the_user_sets_wins_over_the_preset() -> None:
    settings = load_settings(
        {"provider": "gcs", "region": "europe-west1", "addressing": "virtual", "checksum": "none"},
        env=KEYS,
    )
    assert (settings.region, settings.addressing, settings.checksum) == (
        "europe-west1",
        "virtual",
        "none",
    )
    assert settings.sources["endpoint_url"] == "provider"
    assert settings.sources["region"] == "flag"


@pytest.mark.parametrize("name", ["r2", "b2", "minio", "seaweedfs", "custom"])
def test_a_provider_without_a_fixed_endpoint_asks_for_one(name: str) -> None:
    settings = load_settings({"provider": name}, env=KEYS)
    with pytest.raises(ConfigError) as caught:
        Presigner.from_settings(settings, KEYS)
    assert "--endpoint-url" in caught.value.hint


@pytest.mark.usefixtures("env_credentials")
def test_checksum_header_follows_the_provider(run: Run, tmp_path: Path) -> None:
    body = tmp_path / "a.txt"
    body.write_text("hello")
    for provider, header in (("gcs", "Content-MD5"), ("seaweedfs", "x-amz-checksum-sha256")):
        args = ["sign", "my-bucket", "a.txt", "--file", str(body), "--provider", provider]
        args += ["-o", "json"]
        if provider == "seaweedfs":
            args += ["--endpoint-url", "http://127.0.0.1:8333"]
        result = run(*args)
        assert result.exit_code == 0, result.stderr
        assert header in result.stdout


def test_config_show_names_the_provider_as_source(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3SIGN_PROVIDER", "gcs")
    result = run("config", "show")
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "https://storage.googleapis.com" in lines["endpoint_url"]
    assert lines["endpoint_url"].rstrip().endswith("provider")
    assert lines["provider"].rstrip().endswith("S3SIGN_PROVIDER")
