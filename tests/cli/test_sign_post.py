"""``s3sign sign --post``: a POST policy's fields, outputs and refusals."""

from __future__ import annotations

import base64
import json

import pytest

from tests.cli.conftest import Run
from tests.conftest import EXAMPLE_SECRET_KEY

pytestmark = pytest.mark.usefixtures("env_credentials")
NOW = "2026-01-01T00:00:00Z"


def policy_of(fields: dict[str, str]) -> dict[str, object]:
    document: dict[str, object] = json.loads(base64.b64decode(fields["policy"]))
    return document


def test_policy_holds_every_condition(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "the-session-token")
    result = run(
        "sign",
        "my-bucket",
        "up/${filename}",
        "--post",
        "--max-size",
        "10MiB",
        "--min-size",
        "1",
        "--content-type-prefix",
        "image/",
        "--expires",
        "1h",
        "--now",
        NOW,
    )
    assert result.exit_code == 0, result.stderr
    form = json.loads(result.stdout)
    assert form["url"] == "https://my-bucket.s3.eu-west-1.amazonaws.com/"
    assert form["expiresAt"] == "2026-01-01T01:00:00Z"
    fields = form["fields"]
    assert fields["key"] == "up/${filename}"
    assert fields["x-amz-credential"] == "AKIAIOSFODNN7EXAMPLE/20260101/eu-west-1/s3/aws4_request"
    assert fields["x-amz-security-token"] == "the-session-token"
    assert len(fields["x-amz-signature"]) == 64
    policy = policy_of(fields)
    assert policy["expiration"] == "2026-01-01T01:00:00.000Z"
    conditions = policy["conditions"]
    assert isinstance(conditions, list)
    assert {"bucket": "my-bucket"} in conditions
    assert ["starts-with", "$key", "up/"] in conditions
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    assert ["content-length-range", 1, 10 * 1024 * 1024] in conditions
    assert {"x-amz-security-token": "the-session-token"} in conditions
    assert EXAMPLE_SECRET_KEY not in result.stdout


def test_curl_and_html_outputs(run: Run) -> None:
    args = (
        "sign",
        "my-bucket",
        "a.txt",
        "--post",
        "--max-size",
        "100",
        "--content-type",
        "text/plain",
        "--now",
        NOW,
    )
    curl = run(*args, "-o", "curl")
    assert curl.exit_code == 0, curl.stderr
    assert curl.stdout.startswith(
        "curl -fsS --form-string key=a.txt --form-string Content-Type=text/plain "
    )
    assert curl.stdout.rstrip().endswith(
        "-F file=@FILE https://my-bucket.s3.eu-west-1.amazonaws.com/"
    )
    page = run(*args, "-o", "html")
    assert page.exit_code == 0, page.stderr
    assert (
        '<form action="https://my-bucket.s3.eu-west-1.amazonaws.com/" method="post"' in page.stdout
    )
    assert '<input type="hidden" name="key" value="a.txt">' in page.stdout
    assert '<input type="file" name="file">' in page.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("b-1", "k", "--post"), "--post needs --max-size"),
        (
            ("b-1", "k", "--post", "--max-size", "1", "--size", "1"),
            "--size cannot be used with --post",
        ),
        (("b-1", "k", "--post", "--max-size", "1", "--method", "get"), "--method cannot be used"),
        (("b-1", "k", "--max-size", "1"), "--max-size only apply to --post"),
        (("b-1", "k", "--size", "1", "-o", "html"), "-o html is for --post"),
        (("b-1", "k", "--post", "--max-size", "1", "--min-size", "2"), "size range 2..1"),
        (("b-1", "k", "--post", "--max-size", "6GiB"), "within 0..5GiB"),
        (
            (
                "b-1",
                "k",
                "--post",
                "--max-size",
                "1",
                "--content-type",
                "a/b",
                "--content-type-prefix",
                "a/",
            ),
            "not both",
        ),
        (("b-1", "a/${filename}/b", "--post", "--max-size", "1"), "may only end the key"),
        (("b-1", "k", "--post", "--max-size", "1", "-o", "env"), "not env"),
    ],
)
def test_refusals(run: Run, args: tuple[str, ...], message: str) -> None:
    result = run("sign", *args)
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert message in result.stderr
