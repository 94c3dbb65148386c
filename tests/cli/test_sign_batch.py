"""``s3sign sign --batch``: JSON lines in, one JSON line out for each, bad lines alone."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from s3sign.credentials import Credentials
from s3sign.formats import as_dict
from s3sign.presign import Presigner, SignRequest
from tests.cli.conftest import Run
from tests.conftest import EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY

pytestmark = pytest.mark.usefixtures("env_credentials")
NOW = "2026-01-01T00:00:00Z"


def lines(*documents: object) -> str:
    return "".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in documents)


def expected(request: SignRequest) -> dict[str, object]:
    """What a single `sign -o json` of the same request gives, as of NOW."""
    presigner = Presigner(Credentials(EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY), "eu-west-1")
    moment = datetime.fromisoformat(NOW.replace("Z", "+00:00")).astimezone(UTC)
    document: dict[str, object] = json.loads(json.dumps(as_dict(presigner.sign(request, moment))))
    return document


def test_each_line_signed_in_order_and_bad_lines_reported_alone(run: Run) -> None:
    source = lines(
        {"bucket": "my-bucket", "key": "logs/a 1.txt", "size": 5},
        "not json",
        "",  # blank lines are skipped, but still counted
        {"bucket": "my-bucket", "key": "x", "method": "get", "expires": "1h"},
        {"bucket": "my-bucket", "key": "x", "size": -1},
        {"bucket": "my-bucket", "key": "x", "size": 1, "colour": "red"},
        {"bucket": "my-bucket", "key": "x", "method": "GET", "size": 3},
        [1, 2],
        {"key": "x", "size": 1},
        {"bucket": "my-bucket", "key": "x", "size": "5"},
        {
            "bucket": "my-bucket",
            "key": "y",
            "size": 3,
            "contentType": "text/plain",
            "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "meta": {"build": "42"},
        },
    )
    result = run("sign", "--batch", "-", "--now", NOW, input=source)
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 10
    assert out[0] == expected(SignRequest("my-bucket", "logs/a 1.txt", size=5))
    assert out[2] == expected(SignRequest("my-bucket", "x", method="GET", expires=3600))
    assert out[9] == expected(
        SignRequest(
            "my-bucket",
            "y",
            size=3,
            content_type="text/plain",
            sha256="ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
            meta=(("build", "42"),),
        )
    )
    errors = {doc["line"]: doc["error"] for doc in out if "error" in doc}
    assert {line: error["code"] for line, error in errors.items()} == {
        2: "invalid_json",
        5: "invalid_request",
        6: "invalid_request",
        7: "invalid_request",
        8: "invalid_json",
        9: "invalid_request",
        10: "invalid_request",
    }
    assert "negative" in errors[5]["message"]
    assert "unknown field 'colour'" in errors[6]["message"]
    assert "'size'" in errors[7]["message"]  # the line's field, not the --size flag
    assert "--" not in errors[7]["message"]
    assert "'bucket' is missing" in errors[9]["message"]


def test_flags_give_defaults_and_all_good_exits_0(run: Run, tmp_path: Path) -> None:
    source = tmp_path / "requests.jsonl"
    source.write_text(lines(*({"bucket": "my-bucket", "key": name} for name in "ab")))
    result = run("sign", "--batch", str(source), "--method", "get", "--expires", "2h", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out == [
        expected(SignRequest("my-bucket", name, method="GET", expires=7200)) for name in "ab"
    ]


def test_content_type_flag_is_the_default_for_puts(run: Run) -> None:
    source = lines({"bucket": "my-bucket", "key": "a", "size": 1})
    result = run("sign", "--batch", "-", "--content-type", "text/csv", input=source)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["headers"]["Content-Type"] == "text/csv"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("my-bucket", "--batch", "-"), "BUCKET cannot be used with --batch"),
        (("--batch", "-", "--size", "5"), "--size cannot be used with --batch"),
        (("--batch", "-", "-o", "curl"), "--batch prints JSON lines"),
        (("--batch", "/nonexistent/requests.jsonl"), "No such file"),
        ((), "missing BUCKET"),
    ],
)
def test_usage_errors(run: Run, args: tuple[str, ...], message: str) -> None:
    result = run("sign", *args, input="")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_answers_each_line_before_the_next_arrives() -> None:
    """A program can write one request and wait for its URL: output is not held back."""
    process = subprocess.Popen(
        [sys.executable, "-m", "s3sign", "sign", "--batch", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": ""},
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        for index in range(3):
            request = {"bucket": "my-bucket", "key": f"k{index}", "size": index}
            process.stdin.write(lines(request).encode())
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, "no answer: the output is held back"
            answer = json.loads(process.stdout.readline())
            assert answer["key"] == f"k{index}"
        process.stdin.close()
        assert process.wait(30) == 0
    finally:
        process.kill()


def test_a_reader_that_leaves_early_ends_the_batch_quietly() -> None:
    """`s3sign sign --batch big.jsonl | head -1`: exit 141, no error, no traceback."""
    source = lines(
        *({"bucket": "my-bucket", "key": f"k{index}", "size": 1} for index in range(20000))
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "s3sign", "sign", "--batch", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    stdin = process.stdin

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError):  # s3sign stops reading when it exits
            stdin.write(source.encode())

    threading.Thread(target=feed, daemon=True).start()
    assert json.loads(process.stdout.readline())["key"] == "k0"
    process.stdout.close()
    assert process.wait(60) == 141
    assert process.stderr.read() == b""
