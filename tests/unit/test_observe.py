"""The audit log's lines: JSON, one per decision, each whole in one write, so that the lines
of several worker processes sharing stderr or the audit file never cut into each other."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any, cast

from fastapi import Request

from s3sign.server.observe import WHOLE_WRITE, Decision, Metrics, Observer


class Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def request(**claims: Any) -> Request:
    return cast(
        Request,
        SimpleNamespace(
            scope={"route": SimpleNamespace(name="create_uploads")},
            path_params={"run_id": "run-1"},
            state=SimpleNamespace(claims=claims),
            client=SimpleNamespace(host="127.0.0.1"),
        ),
    )


def test_each_write_holds_whole_lines_and_no_more_than_a_pipe_keeps_whole() -> None:
    stream = Writes()
    decisions = [
        Decision("ready", key=f"runs/run-1/step_{n}/out\n{'é' * 3}.json", size=n, signed=1)
        for n in range(1000)
    ]
    huge = Decision("rejected", "name_too_long", file="x" * 10_000)
    Observer(Metrics(), stream).decided(request(jti="abc", sub="run-1"), [*decisions, huge])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1001
    parsed = [json.loads(line) for line in lines]
    assert parsed[0]["key"] == "runs/run-1/step_0/out\nééé.json"  # escaped, not a line break
    assert parsed[0]["jti"] == "abc"
    assert parsed[-1]["file"] == "x" * 10_000
    assert len(stream.writes) > 1
    for text in stream.writes:
        assert text.endswith("\n")
        assert len(text.encode()) <= WHOLE_WRITE or text.count("\n") == 1
