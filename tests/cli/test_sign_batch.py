"""``s3sign sign --batch``: JSON lines in, one JSON line out for each, bad lines alone."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from s3sign.credentials import Credentials
from s3sign.signing import batch as batch_module
from s3sign.signing.batch_lines import Defaults
from s3sign.signing.formats import as_dict
from s3sign.signing.presign import Presigner, SignRequest
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


def mixed_lines(count: int) -> str:
    """Good lines, unicode keys, bad JSON, blank lines and refused requests, spread out."""
    chosen = []
    for index in range(count):
        if index % 997 == 0:
            chosen.append("not json")
        elif index % 1499 == 0:
            chosen.append("")
        elif index % 2003 == 0:
            chosen.append(json.dumps({"bucket": "b-1", "key": "k", "method": "GET", "size": 3}))
        else:
            chosen.append(json.dumps({"bucket": "b-1", "key": f"ü/{index} x.json", "size": index}))
    return "\n".join(chosen) + "\n"


def batch(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3sign", "sign", "--batch", *args, "--now", NOW],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: one process")
def test_a_big_file_signed_in_parts_gives_what_one_process_gives(tmp_path: Path) -> None:
    source = mixed_lines(60_000)  # ~3.5 MB: cut into parts, one per core
    path = tmp_path / "requests.jsonl"
    path.write_text(source)
    with path.open("rb") as handle:
        assert len(batch_module._parts(handle)) >= 2
    in_parts = batch(str(path))
    one_process = batch("-", stdin=source)
    assert in_parts.returncode == one_process.returncode == 1
    assert in_parts.stdout == one_process.stdout
    assert in_parts.stderr == one_process.stderr
    inputs = source.splitlines()
    errors = [json.loads(line) for line in in_parts.stdout.splitlines() if '"line"' in line]
    assert max(error["line"] for error in errors) > 40_000  # past the first part
    for error in errors:  # each number names a bad input line, in whichever part it was
        assert inputs[error["line"] - 1] == "not json" or '"GET"' in inputs[error["line"] - 1]


def test_parts_are_cut_after_a_newline_with_their_first_line_number(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(mixed_lines(60_000))
    data = path.read_bytes()
    with path.open("rb") as handle:
        parts = batch_module._parts(handle)
    if len(os.sched_getaffinity(0)) < 2:
        assert parts in ([], [(0, len(data), 1)])
        return
    assert parts[0][0] == 0
    assert parts[-1][1] == len(data)
    for (_, end, _), (start, _, first_line) in itertools.pairwise(parts):
        assert end == start
        assert data[start - 1 : start] == b"\n"
        assert first_line == data[:start].count(b"\n") + 1


def test_a_part_whose_process_failed_is_signed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(mixed_lines(40_000))
    presigner = Presigner(Credentials(EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY), "eu-west-1")
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    defaults = Defaults()

    def signed(source: io.BufferedReader) -> tuple[str, int, int]:
        out = io.StringIO()
        result = batch_module.sign_source(
            source, out.write, out.flush, presigner, defaults, now=moment
        )
        return out.getvalue(), result.signed, result.failed

    with path.open("rb") as handle:
        whole = signed(handle)

    def failed(pid: int, report: int) -> None:
        os.waitpid(pid, 0)

    monkeypatch.setattr(batch_module, "_collect", failed)
    with path.open("rb") as handle:
        assert signed(handle) == whole


def test_a_big_file_stops_whole_on_ctrl_c_and_on_a_closed_stdout(tmp_path: Path) -> None:
    """No part's process outlives the command: Ctrl-C is exit 130, `| head -1` exit 141."""
    path = tmp_path / "requests.jsonl"
    path.write_text(mixed_lines(300_000))
    command = [sys.executable, "-m", "s3sign", "sign", "--batch", str(path)]
    interrupted = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    assert interrupted.stdout is not None
    interrupted.stdout.readline()  # signing is under way
    os.kill(interrupted.pid, signal.SIGINT)  # the parent only: it must stop its parts itself
    interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130
    closed = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    assert closed.stdout is not None
    closed.stdout.readline()
    closed.stdout.close()
    assert closed.wait(60) == 141
    for process in (interrupted, closed):
        left = subprocess.run(
            ["pgrep", "-s", str(process.pid)], capture_output=True, text=True, check=False
        )
        assert left.stdout.split() == [], "a part's process was left running"
