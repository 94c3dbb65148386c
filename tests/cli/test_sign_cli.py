"""``s3sign sign`` as a user runs it: exit code, stdout and stderr checked separately."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.conftest import EXAMPLE_SECRET_KEY

pytestmark = pytest.mark.usefixtures("env_credentials")

AWS_EXAMPLE_SIGNATURE = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_url_alone_on_stdout(run: Run) -> None:
    result = run("sign", "my-bucket", "logs/build 1.txt", "--size", "5")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("https://my-bucket.s3.eu-west-1.amazonaws.com/logs/build%201.txt?")
    assert "X-Amz-SignedHeaders=content-length%3Bhost" in lines[0]


def test_reproduces_aws_published_example_through_the_cli(run: Run) -> None:
    result = run(
        "sign",
        "s3://examplebucket/test.txt",
        "--method",
        "get",
        "--expires",
        "86400",
        "--now",
        "2013-05-24T00:00:00Z",
        "--region",
        "us-east-1",
        "--endpoint-url",
        "https://s3.amazonaws.com",
        "--addressing",
        "virtual",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("https://examplebucket.s3.amazonaws.com/test.txt?")
    assert result.stdout.strip().endswith(f"X-Amz-Signature={AWS_EXAMPLE_SIGNATURE}")


def test_now_makes_output_reproducible(run: Run) -> None:
    args = ("sign", "b-1", "k", "--size", "1", "--now", "2026-01-01T00:00:00Z")
    assert run(*args).stdout == run(*args).stdout


def test_json_output(run: Run) -> None:
    result = run(
        "sign",
        "b-1",
        "a.txt",
        "--size",
        "3",
        "--content-type",
        "text/plain",
        "--meta",
        "build=7",
        "-o",
        "json",
        "--now",
        "2026-01-01T00:00:00Z",
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["method"] == "PUT"
    assert document["headers"] == {
        "Content-Length": "3",
        "Content-Type": "text/plain",
        "x-amz-meta-build": "7",
    }
    assert document["expiresAt"] == "2026-01-01T00:15:00Z"
    assert (document["bucket"], document["key"]) == ("b-1", "a.txt")


def test_file_fills_size_type_and_sha256(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b'{"ok": true}')
    result = run("sign", "b-1", "r.json", "--file", str(path), "-o", "json")
    assert result.exit_code == 0, result.stderr
    headers = json.loads(result.stdout)["headers"]
    assert headers["Content-Length"] == "12"
    assert headers["Content-Type"] == "application/json"
    assert (
        headers["x-amz-checksum-sha256"]
        == base64.b64encode(hashlib.sha256(b'{"ok": true}').digest()).decode()
    )


def test_file_with_md5_or_no_checksum_and_type_override(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    md5 = json.loads(
        run("sign", "b-1", "k", "--file", str(path), "--checksum", "md5", "-o", "json").stdout
    )["headers"]
    assert md5["Content-MD5"] == base64.b64encode(hashlib.md5(b"abc").digest()).decode()
    assert md5["Content-Type"] == "application/octet-stream"
    none = json.loads(
        run(
            "sign",
            "b-1",
            "k",
            "--file",
            str(path),
            "--checksum",
            "none",
            "--content-type",
            "text/csv",
            "-o",
            "json",
        ).stdout
    )["headers"]
    assert none == {"Content-Length": "3", "Content-Type": "text/csv"}


def test_curl_output_uses_the_file(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hi")
    result = run("sign", "b-1", "a.txt", "--file", str(path), "-o", "curl")
    assert result.stdout.startswith(f"curl -fsS -T {path} ")


def test_quiet_and_verbose(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "sessiontokenvalue")
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", "2026-01-01T00:05:00Z")
    args = ["sign", "b-1", "k", "--size", "1", "--now", "2026-01-01T00:00:00Z"]
    loud = run(*args, "--expires", "1h")
    assert loud.exit_code == 0
    assert "warning: the AWS credentials expire in 5m" in loud.stderr
    assert "X-Amz-Expires=300&" in loud.stdout
    assert run("-q", *args, "--expires", "1h").stderr == ""
    strict = run(*args, "--expires", "1h", "--strict-expiry")
    assert strict.exit_code == 4
    assert strict.stdout == ""
    verbose = run("-v", *args)
    assert "credentials: env (AKIA…MPLE)" in verbose.stderr
    for secret in (EXAMPLE_SECRET_KEY, "sessiontokenvalue", "X-Amz-Signature", "X-Amz-Credential"):
        assert secret not in verbose.stderr


def test_version_and_help(run: Run) -> None:
    from s3sign import __version__

    assert run("--version").stdout == f"s3sign {__version__}\n"
    no_args = run()
    assert no_args.exit_code == 2
    assert "Usage: s3sign" in no_args.stderr
    assert "--size BYTES" in run("sign", "--help").stdout


def _assert_fails(run: Run, code: int, message: str, *args: str) -> str:
    result = run(*args)
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert result.stdout == ""
    first, *rest = result.stderr.splitlines()
    assert first.startswith("s3sign: error: "), result.stderr
    assert message in first, result.stderr
    assert rest, result.stderr
    assert rest[0].startswith("  hint: "), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sign", "b-1", "k"], "needs the exact size"),
        (["sign", "b-1", "k", "--size", "-5"], "--size -5 is negative"),
        (["sign", "b-1", "k", "--size", "five"], "'five' is not a size"),
        (["sign", "b-1", "k", "--size", str(5 * 1024**3 + 1)], "over 5 GiB"),
        (["sign", "b-1", "k", "--size", "1", "--expires", "0"], "longer than 0 seconds"),
        (["sign", "b-1", "k", "--size", "1", "--expires", "-5m"], "not a duration"),
        (["sign", "b-1", "k", "--size", "1", "--expires", "8d"], "over 7d"),
        (["sign", "b-1", "k", "--size", "1", "--expires", "soon"], "not a duration"),
        (["sign", "Bad_Bucket", "k", "--size", "1"], "invalid bucket name"),
        (["sign", "s3://b-1/", "--size", "1"], "key is empty"),
        (["sign", "b-1", "k" * 1025, "--size", "1"], "1025 bytes long"),
        (["sign", "b-1", "k", "--size", "1", "--meta", "novalue"], "not NAME=VALUE"),
        (["sign", "b-1", "k", "--size", "1", "--endpoint-url", "ftp://x"], "not an http(s) URL"),
        (
            ["sign", "b-1", "k", "--size", "1", "--endpoint-url", "http://h:99999"],
            "not a valid URL",
        ),
        (["sign", "b-1", "k", "--size", "1", "--sha256", "zz"], "not a base64 256-bit"),
        (["sign", "b-1", "k", "--size", "1", "--now", "yesterday"], "not an ISO 8601 time"),
        (["sign", "b-1", "--size", "1"], "missing the object key"),
        (["sign", "s3://b-1/k", "k2", "--size", "1"], "not both"),
        (["sign", "b-1", "k", "--method", "get", "--size", "1"], "only apply to PUT"),
        (["sign", "b-1", "k", "--method", "post"], "Invalid value for '--method'"),
        (["sign", "b-1", "k", "--bogus"], "No such option: --bogus"),
    ],
)
def test_bad_input_is_a_usage_error(run: Run, args: list[str], message: str) -> None:
    _assert_fails(run, 2, message, *args)


def test_file_problems(run: Run, tmp_path: Path) -> None:
    _assert_fails(run, 2, "no such file", "sign", "b-1", "k", "--file", str(tmp_path / "nope"))
    _assert_fails(run, 2, "is a directory", "sign", "b-1", "k", "--file", str(tmp_path))
    path = tmp_path / "f"
    path.write_text("x")
    _assert_fails(run, 2, "not both", "sign", "b-1", "k", "--file", str(path), "--size", "1")
    _assert_fails(
        run,
        2,
        "--file only applies to PUT",
        "sign",
        "b-1",
        "k",
        "--file",
        str(path),
        "--method",
        "get",
    )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    _assert_fails(run, 2, "not a regular file", "sign", "b-1", "k", "--file", str(fifo))


def test_unreadable_file(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret"
    path.write_text("x")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: have the kernel's answer come from a stub
        real_open = Path.open

        def refuse(self: Path, *args: object, **kwargs: object) -> object:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(Path, "open", refuse)
    stderr = _assert_fails(run, 2, "cannot read it", "sign", "b-1", "k", "--file", str(path))
    assert "Permission denied" in stderr


def test_missing_credentials_is_exit_4(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    stderr = _assert_fails(run, 4, "no AWS credentials found", "sign", "b-1", "k", "--size", "1")
    assert "AWS_PROFILE" in stderr
    assert "aws configure" in stderr


def test_missing_region_is_exit_3(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    stderr = _assert_fails(run, 3, "no region is set", "sign", "b-1", "k", "--size", "1")
    assert "--region" in stderr


def test_config_file_errors_are_exit_3(run: Run, tmp_path: Path) -> None:
    sign = ("sign", "b-1", "k", "--size", "1")
    bad = tmp_path / "bad.yaml"
    bad.write_text("region: eu-west-1\nexpiry: 5m\n")
    _assert_fails(run, 3, f"{bad}:2: unknown key 'expiry'", "--config", str(bad), *sign)
    _assert_fails(run, 3, "does not exist", "--config", str(tmp_path / "none.yaml"), *sign)
    _assert_fails(run, 3, "does not exist", "--config", str(tmp_path), *sign)
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"\x00\xff\xfe")
    _assert_fails(run, 3, "cannot read config file", "--config", str(garbage), *sign)


def test_config_file_values_are_used(run: Run, tmp_path: Path) -> None:
    (Path.cwd() / "s3sign.yaml").write_text("expires: 2m\naddressing: path\n")
    result = run("sign", "b-1", "k", "--size", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("https://s3.eu-west-1.amazonaws.com/b-1/k?")
    assert "X-Amz-Expires=120&" in result.stdout


def test_traceback_only_with_vv(run: Run) -> None:
    quiet = run("sign", "b-1", "k")
    assert "Traceback" not in quiet.stderr
    loud = run("-vv", "sign", "b-1", "k")
    assert loud.exit_code == 2
    assert "Traceback" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-2].startswith("s3sign: error:")


def test_token_command(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import json as json_module

    from s3sign.server.tokens import verify_token

    secret = "cli-test-secret-" + "k" * 32
    monkeypatch.setenv("S3SIGN_SERVER_SECRET", secret)
    plain = run("token", "run-7", "--ttl", "10m")
    assert plain.exit_code == 0, plain.stderr
    verify_token(plain.stdout.strip(), secret.encode(), "run-7")
    env = run("token", "run-7", "-o", "env")
    assert env.stdout.startswith("export S3SIGN_TOKEN=")
    document = json_module.loads(run("token", "run-7", "-o", "json").stdout)
    assert document["runId"] == "run-7"
    assert set(document) == {"token", "runId", "expiresAt", "scope", "runs"}
    assert (document["scope"], document["runs"]) == ("upload", ["run-7"])
    read = run("token", "run-7", "--scope", "read", "--run", "run-6", "-o", "json")
    assert read.exit_code == 0, read.stderr
    document = json_module.loads(read.stdout)
    assert (document["scope"], document["runs"]) == ("read", ["run-7", "run-6"])
    verify_token(document["token"], secret.encode(), "run-6", scope="read")
    both = run("token", "run-7", "--scope", "upload,read").stdout.strip()
    verify_token(both, secret.encode(), "run-7", scope="read")
    verify_token(both, secret.encode(), "run-7", scope="upload")
    _assert_fails(run, 2, "--scope 'admin'", "token", "run-7", "--scope", "admin")
    _assert_fails(run, 2, "--run names more runs", "token", "run-7", "--run", "run-6")
    _assert_fails(run, 2, "run id '../y'", "token", "run-7", "--scope", "read", "--run", "../y")
    _assert_fails(run, 2, "run id '../x'", "token", "../x")
    _assert_fails(run, 2, "--ttl", "token", "run-7", "--ttl", "soon")
    _assert_fails(run, 2, "longer than max_token_ttl (7d)", "token", "run-7", "--ttl", "8d")
    monkeypatch.setenv("S3SIGN_MAX_TOKEN_TTL", "30d")
    assert run("token", "run-7", "--ttl", "8d").exit_code == 0
    monkeypatch.setenv("S3SIGN_SERVER_SECRET", "short")
    _assert_fails(run, 3, "at least 32", "token", "run-7")


def test_config_show_names_sources_and_hides_secrets(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json as json_module

    (Path.cwd() / "s3sign.yaml").write_text("expires: 30m\n")
    monkeypatch.setenv("S3SIGN_CONCURRENCY", "4")
    monkeypatch.setenv("S3SIGN_TOKEN", "header.payload.signature-value")
    result = run("config", "show", "--json")
    assert result.exit_code == 0, result.stderr
    document = json_module.loads(result.stdout)
    assert document["expires"] == {"value": "1800", "source": str(Path.cwd() / "s3sign.yaml")}
    assert document["concurrency"] == {"value": "4", "source": "S3SIGN_CONCURRENCY"}
    assert document["region"]["source"] == "default"
    assert "signature-value" not in result.stdout
    assert EXAMPLE_SECRET_KEY not in run("config", "show").stdout


def test_push_refuses_bad_arguments_before_any_network(run: Run) -> None:
    _assert_fails(
        run,
        2,
        "--content-type 'bad type' is not a content type",
        "push",
        "run-1",
        "x",
        "--content-type",
        "bad type",
    )
    _assert_fails(run, 2, "run id '../x'", "push", "../x", "x")
    _assert_fails(run, 2, "no files matched 'nothing'", "push", "run-1", "nothing")
