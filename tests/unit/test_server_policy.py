"""Key policy, tokens, part plans and the wire format, without any server running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from s3sign.codec import to_wire
from s3sign.errors import ConfigError
from s3sign.keys import PolicyError, check_run_id, file_name_in_run, object_key
from s3sign.protocol import CreateUploadsRequest, FileResult, MultipartPlan
from s3sign.s3limits import MAX_PARTS, plan_parts
from s3sign.server.tokens import TokenError, mint_token, server_secret, verify_token

SECRET = b"unit-test-secret-" + b"y" * 32


def test_seed_request_parses_exactly_as_written() -> None:
    seed = (
        '{"files": [{"fileName": "log_12345.json", "fileSize": 1048576}, '
        '{"fileName": "step_file_1.json", "fileSize": 2048000}]}'
    )
    request = TypeAdapter(CreateUploadsRequest).validate_json(seed)
    assert [(f.file_name, f.file_size) for f in request.files] == [
        ("log_12345.json", 1048576),
        ("step_file_1.json", 2048000),
    ]


def test_wire_is_camel_case_without_empty_fields() -> None:
    result = FileResult(
        file_name="a",
        status="ready",
        key="runs/r/a",
        multipart=MultipartPlan(upload_id="u", part_size=5, part_count=2),
    )
    assert to_wire(result) == {
        "fileName": "a",
        "status": "ready",
        "key": "runs/r/a",
        "multipart": {"uploadId": "u", "partSize": 5, "partCount": 2},
    }


@pytest.mark.parametrize("run_id", ["r", "run-1", "a.b_c-D", "x" * 128])
def test_good_run_ids(run_id: str) -> None:
    check_run_id(run_id)


@pytest.mark.parametrize("run_id", ["", ".", "..", ".s3sign", "a/b", "x" * 129, "ü", "a b", "a\nb"])
def test_bad_run_ids(run_id: str) -> None:
    with pytest.raises(PolicyError) as info:
        check_run_id(run_id)
    assert info.value.code == "invalid_run_id"


def test_keys_are_scoped_and_nfc() -> None:
    assert object_key("runs", "r1", "logs/a.txt") == "runs/r1/logs/a.txt"
    nfd = "cafe\u0301.txt"
    assert object_key("runs", "r1", nfd) == "runs/r1/caf\u00e9.txt"
    assert file_name_in_run("runs", "r1", "runs/r1/logs/a.txt") == "logs/a.txt"
    with pytest.raises(PolicyError, match="not under runs/r1/"):
        file_name_in_run("runs", "r1", "runs/r2/a")
    with pytest.raises(PolicyError, match="NFC"):
        file_name_in_run("runs", "r1", "runs/r1/" + nfd)


@given(st.text(max_size=300))
def test_every_accepted_name_stays_inside_its_run(name: str) -> None:
    try:
        key = object_key("runs", "r1", name)
    except PolicyError as exc:
        refused = exc.code
    else:
        refused = ""
    if refused:
        assert refused in ("invalid_name", "name_too_long")
        return
    assert key.startswith("runs/r1/")
    rest = key[len("runs/r1/") :].split("/")
    assert all(segment not in ("", ".", "..") for segment in rest)
    assert "\\" not in key
    assert len(key.encode()) <= 1024
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in key)


@pytest.mark.parametrize(
    ("size", "part_size", "count"),
    [
        (100 * 1024**2 + 1, 16 * 1024**2, 7),
        (16 * 1024**2, 16 * 1024**2, 1),
        (0, 16 * 1024**2, 1),
    ],
)
def test_part_plans(size: int, part_size: int, count: int) -> None:
    assert plan_parts(size, 16 * 1024**2) == (part_size, count)


def test_part_size_doubles_to_stay_under_10000_parts() -> None:
    size = 5 * 1024**4  # S3's largest object
    part_size, count = plan_parts(size, 16 * 1024**2)
    assert count <= MAX_PARTS
    assert part_size == 1024**3
    assert (count - 1) * part_size < size <= count * part_size


def test_tokens_for_one_run_only() -> None:
    token, expires = mint_token("run-1", 3600, SECRET)
    verify_token(token, SECRET, "run-1")
    assert expires > datetime.now(UTC)
    with pytest.raises(TokenError) as other:
        verify_token(token, SECRET, "run-2")
    assert (other.value.status, other.value.code) == (403, "wrong_run")
    with pytest.raises(TokenError) as wrong:
        verify_token(token, SECRET + b"!", "run-1")
    assert (wrong.value.status, wrong.value.code) == (401, "invalid_token")
    old, _ = mint_token("run-1", 60, SECRET, datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(TokenError) as expired:
        verify_token(old, SECRET, "run-1")
    assert expired.value.code == "token_expired"
    with pytest.raises(TokenError) as missing:
        verify_token(None, SECRET, "run-1")
    assert missing.value.code == "missing_token"


def _refused(token: str, run_id: str, scope: str) -> tuple[int, str]:
    with pytest.raises(TokenError) as refused:
        verify_token(token, SECRET, run_id, scope=scope)
    return refused.value.status, refused.value.code


def test_scopes_upload_read_and_both() -> None:
    upload, _ = mint_token("run-1", 3600, SECRET)
    read, _ = mint_token("run-1", 3600, SECRET, scopes=("read",))
    both, _ = mint_token("run-1", 3600, SECRET, scopes=("read", "upload"))
    verify_token(upload, SECRET, "run-1", scope="upload")
    assert _refused(upload, "run-1", "read") == (403, "wrong_scope")
    verify_token(read, SECRET, "run-1", scope="read")
    assert _refused(read, "run-1", "upload") == (403, "wrong_scope")
    for scope in ("upload", "read"):
        verify_token(both, SECRET, "run-1", scope=scope)
        assert _refused(both, "run-2", scope) == (403, "wrong_run")
    assert jwt.decode(both, options={"verify_signature": False})["scope"] == "upload read"


def test_a_read_token_may_name_more_runs_and_an_upload_token_may_not() -> None:
    read, _ = mint_token("run-2", 3600, SECRET, scopes=("read",), more_runs=("run-0", "run-1"))
    for run in ("run-0", "run-1", "run-2"):
        verify_token(read, SECRET, run, scope="read")
    assert _refused(read, "run-3", "read") == (403, "wrong_run")
    assert _refused(read, "run-0", "upload") == (403, "wrong_scope")
    with pytest.raises(ValueError, match="one run"):
        mint_token("run-2", 3600, SECRET, scopes=("read", "upload"), more_runs=("run-0",))
    with pytest.raises(ValueError, match="scopes are"):
        mint_token("run-2", 3600, SECRET, scopes=("admin",))


def test_a_token_may_not_live_longer_than_the_server_allows() -> None:
    """A 100-year token was accepted: a leaked token must stop working in days."""
    forever, _ = mint_token("run-1", 100 * 365 * 86400, SECRET)
    with pytest.raises(TokenError) as too_long:
        verify_token(forever, SECRET, "run-1")
    assert (too_long.value.status, too_long.value.code) == (401, "token_too_long")
    week, _ = mint_token("run-1", 7 * 86400, SECRET)
    verify_token(week, SECRET, "run-1")  # the default limit, 7 days, is allowed
    with pytest.raises(TokenError):
        verify_token(week, SECRET, "run-1", max_ttl=86400)  # a server that allows a day


def test_server_secret_rules() -> None:
    with pytest.raises(ConfigError, match="is not set"):
        server_secret(None)
    with pytest.raises(ConfigError, match="at least 32"):
        server_secret("short")
    assert server_secret("z" * 32) == b"z" * 32


@pytest.mark.parametrize("secret", [b"", b"x", b"y" * 31])
def test_an_app_refuses_a_secret_that_would_make_forgeable_tokens(secret: bytes) -> None:
    """create_app (what serve and serve --local run): a short secret is a configuration
    error at start (exit 3), not forgeable tokens or a 500 on every call."""
    from s3sign.config import Settings
    from s3sign.credentials import Credentials
    from s3sign.server import UploadSigner, create_app
    from s3sign.signing.presign import Presigner

    settings = Settings(region="eu-west-1", bucket="b")
    signer = UploadSigner(settings, Presigner(Credentials("AKIAEXAMPLE", "s"), "eu-west-1"))
    with pytest.raises(ConfigError, match="at least 32"):
        create_app(settings, secret=secret, signer=signer)


@pytest.mark.parametrize("how", ["env", "empty file"])
def test_serve_local_refuses_a_short_secret_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from typer.testing import CliRunner

    from s3sign.cli import app

    data = tmp_path / "data"
    if how == "env":
        monkeypatch.setenv("S3SIGN_SERVER_SECRET", "x")
    else:
        data.mkdir()
        (data / "server-secret").write_text("")
    done = CliRunner().invoke(app, ["serve", "--local", "--data-dir", str(data)])
    assert done.exit_code == 3, done.output
    assert "it must be at least 32" in done.output
    assert not (data / "store").exists()  # no SeaweedFS was started


def test_upload_signer_as_embedded_in_another_app() -> None:
    """What docs/protocol.md shows for a Flask app, minus Flask: no HTTP layer needed."""
    from s3sign.codec import WireError, from_wire
    from s3sign.config import Settings
    from s3sign.credentials import Credentials
    from s3sign.protocol import ProtocolError
    from s3sign.server import UploadSigner
    from s3sign.signing.presign import Presigner

    settings = Settings(region="eu-west-1", bucket="build-artifacts")
    signer = UploadSigner(settings, Presigner(Credentials("AKIAEXAMPLE", "secret"), "eu-west-1"))
    report: dict[str, object] = {"fileName": "report.json", "fileSize": 12}
    with pytest.raises(WireError, match=r"files\[1\]\.fileSize: missing"):
        from_wire(CreateUploadsRequest, {"files": [report, {"fileName": "../x"}]})
    body = from_wire(CreateUploadsRequest, {"files": [report, {"fileName": "../x", "fileSize": 1}]})
    answer = to_wire(signer.create_uploads("run-1", body))
    assert answer["files"][0]["key"] == "runs/run-1/report.json"
    ready, rejected = signer.create_uploads("run-1", body).files
    assert ready.key == "runs/run-1/report.json"
    assert ready.upload is not None
    assert ready.upload.url.startswith(
        "https://build-artifacts.s3.eu-west-1.amazonaws.com/runs/run-1/report.json?"
    )
    assert ready.upload.headers == {"Content-Length": "12", "Content-Type": "application/json"}
    assert rejected.error is not None
    assert rejected.error.code == "invalid_name"
    with pytest.raises(ProtocolError) as refused:
        signer.create_uploads("../evil", body)
    assert (refused.value.status, refused.value.code) == (400, "invalid_run_id")
