"""``s3sign explain``: what a pre-signed URL allows, and whether its signature holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from s3sign.credentials import Credentials
from s3sign.signing.presign import Presigner, SignRequest
from tests.cli.conftest import Run
from tests.conftest import EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY

pytestmark = pytest.mark.usefixtures("env_credentials")
TOKEN = "FwoGZXIvYXdzEJr-session-token-value"


def signed(
    request: SignRequest,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    ago: timedelta = timedelta(0),
) -> str:
    credentials = Credentials(EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY, token)
    presigner = Presigner(credentials, "eu-west-1", endpoint)
    return presigner.sign(request, datetime.now(UTC) - ago).url


def test_reads_bucket_key_expiry_and_what_must_be_sent(run: Run) -> None:
    url = signed(
        SignRequest(
            "my-bucket",
            "logs/a b+c.txt",
            size=5,
            content_type="text/plain",
            sha256="ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
            meta=(("build", "7"),),
        ),
        token=TOKEN,
    )
    result = run("explain", url, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["version"] == "SigV4"
    assert (document["bucket"], document["key"], document["addressing"]) == (
        "my-bucket",
        "logs/a b+c.txt",
        "virtual",
    )
    assert (document["region"], document["service"]) == ("eu-west-1", "s3")
    assert document["accessKey"] == "AKIA…MPLE"
    assert document["mustSend"] == [
        "content-length",
        "content-type",
        "x-amz-checksum-sha256",
        "x-amz-meta-build",
    ]
    assert "SHA-256 of the body (x-amz-checksum-sha256)" in document["binds"]
    assert document["sessionToken"] is True
    assert 890 <= document["secondsLeft"] <= 900
    assert document["expired"] is False
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    for secret in (signature, TOKEN, EXAMPLE_SECRET_KEY, EXAMPLE_ACCESS_KEY):
        assert secret not in result.stdout
        assert secret not in run("explain", url).stdout


def test_path_style_custom_endpoint_and_operation_parameters(run: Run) -> None:
    url = signed(
        SignRequest(
            "bkt",
            "big file.bin",
            method="PUT",
            size=10,
            query=(("partNumber", "3"), ("uploadId", "u-1")),
        ),
        endpoint="http://127.0.0.1:9000",
    )
    result = run("explain", url)
    assert result.exit_code == 0, result.stderr
    assert "endpoint:    http://127.0.0.1:9000" in result.stdout
    assert "bucket:      bkt  (path-style)" in result.stdout
    assert "key:         big file.bin" in result.stdout
    assert "operation:   partNumber=3, uploadId=u-1" in result.stdout


def test_an_expired_url_says_how_long_ago(run: Run) -> None:
    url = signed(SignRequest("my-bucket", "k", method="GET", expires=60), ago=timedelta(hours=2))
    result = run("explain", url)
    assert "(expired 1h59m ago)" in result.stdout


def test_reads_the_url_from_stdin(run: Run) -> None:
    url = signed(SignRequest("my-bucket", "k", method="GET"))
    assert "bucket:      my-bucket" in run("explain", input=url + "\n").stdout
    assert "bucket:      my-bucket" in run("explain", "-", input=url + "\n").stdout


def test_verify_checks_method_and_header_values(run: Run) -> None:
    url = signed(SignRequest("my-bucket", "k", size=5, content_type="text/plain"))
    headers = ("-H", "Content-Length: 5", "-H", "content-type: text/plain")
    good = run("explain", url, "--verify", "--method", "put", *headers)
    assert good.exit_code == 0, good.stderr
    assert "verified:    PUT matches" in good.stdout

    for method, length in (("get", "5"), ("put", "6")):
        bad = run(
            "explain",
            url,
            "--verify",
            "--method",
            method,
            "-H",
            f"Content-Length: {length}",
            "-H",
            "Content-Type: text/plain",
            "--json",
        )
        assert bad.exit_code == 1
        assert json.loads(bad.stdout)["verified"] is False

    missing = run("explain", url, "--verify", "--method", "put", "-H", "Content-Length: 5")
    assert missing.exit_code == 2
    assert "content-type" in missing.stderr


def test_verify_with_other_credentials_names_both_keys(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = signed(SignRequest("my-bucket", "k", method="GET"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERKEY00000000")
    result = run("explain", url, "--verify", "--method", "get")
    assert result.exit_code == 1
    assert "AKIA…MPLE" in result.stdout
    assert "AKIA…0000" in result.stdout


def test_sigv2_is_named_and_called_deprecated(run: Run) -> None:
    url = "https://b-1.s3.amazonaws.com/k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1700000000&Signature=c2lnbmF0dXJl"
    result = run("explain", url)
    assert result.exit_code == 0
    assert "signature:   SigV2" in result.stdout
    assert "deprecated" in result.stdout
    assert "c2lnbmF0dXJl" not in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("garbage", "is not an http(s) URL"),
        ("https://example.com/file.txt?version=2", "not a pre-signed S3 URL"),
        (
            "https://b-1.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=2026",
            "incomplete",
        ),
        ("", "no URL given"),
    ],
)
def test_what_is_not_a_presigned_url(run: Run, url: str, message: str) -> None:
    result = run("explain", url, input="")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
