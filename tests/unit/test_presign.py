"""What can be signed, what gets bound, and how the result is rendered."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3sign.config import check_endpoint_url
from s3sign.credentials import Credentials
from s3sign.errors import ExitCode, UsageError
from s3sign.signing.addressing import Endpoint, check_bucket, locate
from s3sign.signing.formats import as_dict, json_line, render
from s3sign.signing.presign import Presigner, SignRequest, check_request, normalize_digest

SHA = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="  # sha256("test")
MD5 = "CY9rzUYh03PK3k6DJie09g=="  # md5("test")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _signer(endpoint: str | None = None) -> Presigner:
    return Presigner(Credentials("AKIAEXAMPLE", "secret"), "eu-west-1", endpoint)


def test_put_binds_length_type_checksum_and_meta() -> None:
    request = SignRequest(
        "b-1", "k", size=4, content_type="text/plain", sha256=SHA, meta=(("Build", "42"),)
    )
    signed = _signer().sign(request, NOW)
    assert dict(signed.headers) == {
        "Content-Length": "4",
        "Content-Type": "text/plain",
        "x-amz-checksum-sha256": SHA,
        "x-amz-meta-build": "42",
    }
    assert (
        "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256%3Bx-amz-meta-build"
        in signed.url
    )


def test_get_signs_only_host() -> None:
    signed = _signer().sign(SignRequest("b-1", "k", method="GET"), NOW)
    assert signed.headers == {}
    assert "X-Amz-SignedHeaders=host&" in signed.url


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SignRequest("b-1", "k"), "needs the exact size"),
        (SignRequest("b-1", "k", size=-1), "negative"),
        (SignRequest("b-1", "k", size=5 * 1024**3 + 1), "over 5 GiB"),
        (SignRequest("b-1", "", size=1), "key is empty"),
        (SignRequest("b-1", "é" * 513, size=1), "1026 bytes long"),
        (SignRequest("b-1", "a/../b", size=1), "'..' segment"),
        (SignRequest("Bad_Bucket", "k", size=1), "invalid bucket name"),
        (SignRequest("b-1", "k", size=1, expires=0), "outside 1s..7d"),
        (SignRequest("b-1", "k", size=1, expires=7 * 86400 + 1), "outside 1s..7d"),
        (SignRequest("b-1", "k", size=1, content_type="not a type"), "not a content type"),
        (SignRequest("b-1", "k", size=1, sha256="abc"), "not a base64 256-bit digest"),
        (SignRequest("b-1", "k", size=1, md5=SHA), "not a base64 128-bit digest"),
        (SignRequest("b-1", "k", size=1, sha256=SHA, md5=MD5), "not both"),
        (SignRequest("b-1", "k", size=1, meta=(("a b", "x"),)), "may only hold"),
        (SignRequest("b-1", "k", size=1, meta=(("a", "x"), ("A", "y"))), "given twice"),
        (SignRequest("b-1", "k", size=1, meta=(("a", "é"),)), "cannot carry"),
        (SignRequest("b-1", "k", method="GET", size=1), "--size/--file .*only apply to PUT"),
        (SignRequest("b-1", "k", method="DELETE", content_type="a/b"), "only apply to PUT"),
    ],
)
def test_bad_requests_are_usage_errors(request_: SignRequest, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        check_request(request_)
    assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "a" * 64,
        "-abc",
        "abc-",
        "a..b",
        "192.168.1.1",
        "xn--abc",
        "abc-s3alias",
        "a.-b",
        "UPPER",
    ],
)
def test_aws_bucket_rules(bucket: str) -> None:
    with pytest.raises(UsageError, match="invalid bucket name"):
        check_bucket(bucket, strict=True)


def test_custom_endpoints_accept_legacy_bucket_names() -> None:
    check_bucket("Legacy_Bucket", strict=False)
    with pytest.raises(UsageError):
        check_bucket("has space", strict=False)


def test_digest_hex_or_base64() -> None:
    assert (
        normalize_digest("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 32)
        == SHA
    )
    assert normalize_digest(SHA, 32) == SHA
    assert normalize_digest("098f6bcd4621d373cade4e832627b4f6", 16) == MD5


def test_addressing_falls_back_to_path_where_virtual_cannot_work() -> None:
    ip = Endpoint.from_url("http://127.0.0.1:9000")
    assert locate(ip, "my-bucket", "k", "virtual").host == "127.0.0.1:9000"
    named = Endpoint.from_url("https://store.example.com")
    assert locate(named, "my-bucket", "k", "virtual").host == "my-bucket.store.example.com"
    assert locate(named, "my.bucket", "k", "virtual").host == "store.example.com"
    assert locate(named, "my-bucket", "k", "auto").path == "/my-bucket/k"
    default_port = Endpoint.from_url("https://store.example.com:443/base/")
    location = locate(default_port, "b", "a b", "path")
    assert location.host == "store.example.com"
    assert location.url == "https://store.example.com:443/base/b/a%20b"


def test_render_json_curl_env() -> None:
    signed = _signer().sign(
        SignRequest("b-1", "dir/report.json", size=4, content_type="application/json", sha256=SHA),
        NOW,
    )
    document = json.loads(render(signed, "json"))
    assert document == {
        "method": "PUT",
        "url": signed.url,
        "headers": dict(signed.headers),
        "expiresAt": "2026-03-01T12:15:00Z",
        "bucket": "b-1",
        "key": "dir/report.json",
    }
    assert render(signed, "url") == signed.url + "\n"
    curl = shlex.split(render(signed, "curl", body_path="out/report file.json"))
    assert curl[:4] == ["curl", "-fsS", "-T", "out/report file.json"]
    assert "Content-Type: application/json" in curl
    assert f"x-amz-checksum-sha256: {SHA}" in curl
    assert curl[-1] == signed.url
    env_lines = render(signed, "env").splitlines()
    assert f"export S3SIGN_URL={shlex.quote(signed.url)}" in env_lines
    assert "export S3SIGN_HEADER_CONTENT_TYPE=application/json" in env_lines


_KEY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda key: "." not in key
)  # no dot segments: those are refused


@given(
    key=_KEY_TEXT,
    content_type=st.sampled_from([None, "text/plain", 'text/plain; charset="utf-8"']),
    meta=st.dictionaries(
        st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
        max_size=3,
    ),
    endpoint=st.sampled_from([None, "http://127.0.0.1:8333", "https://s3.example.com/base%20x"]),
)
def test_json_line_is_what_json_dumps_writes(
    key: str, content_type: str | None, meta: dict[str, str], endpoint: str | None
) -> None:
    """The hand-written JSON line must stay byte-equal to json.dumps of the same dict."""
    request = SignRequest(
        "b-1", key, size=3, content_type=content_type, meta=tuple(meta.items()), sha256=SHA
    )
    signed = _signer(endpoint).sign(request, NOW)
    assert json_line(signed) == json.dumps(as_dict(signed), ensure_ascii=False) + "\n"
    assert json.loads(json_line(signed))["key"] == key


@pytest.mark.parametrize("url", ['https://s3.example.com/a"b', "http://h/a b", "http://h/a\\b"])
def test_endpoints_with_characters_a_url_cannot_hold_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="cannot hold unencoded"):
        check_endpoint_url(url)
    with pytest.raises(ValueError, match="cannot hold unencoded"):
        Endpoint.from_url(url)


@pytest.mark.parametrize(
    ("method", "expected"),
    [("GET", ["-o", "report.json"]), ("HEAD", ["-I"]), ("DELETE", ["-X", "DELETE"])],
)
def test_curl_for_other_methods(method: str, expected: list[str]) -> None:
    signed = _signer().sign(SignRequest("b-1", "dir/report.json", method=method), NOW)  # type: ignore[arg-type]
    words = shlex.split(render(signed, "curl"))
    assert words[2 : 2 + len(expected)] == expected
