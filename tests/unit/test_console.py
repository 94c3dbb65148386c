"""Diagnostics: colour only on a terminal without NO_COLOR; -q silences all but errors."""

from __future__ import annotations

import io

import pytest

from s3sign.console import Console


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = FakeTerminal()
    Console(stderr=terminal).error("boom", "try again")
    assert "\033[31m" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = FakeTerminal()
    Console(stderr=plain).error("boom", "try again")
    assert plain.getvalue() == "s3sign: error: boom\n  hint: try again\n"


def test_no_colour_when_not_a_terminal() -> None:
    stream = io.StringIO()
    Console(stderr=stream).warning("careful")
    assert stream.getvalue() == "s3sign: warning: careful\n"


def test_verbosity_levels() -> None:
    stream = io.StringIO()
    quiet = Console(verbosity=-1, stderr=stream)
    quiet.warning("w")
    quiet.info("i")
    quiet.error("e")
    assert stream.getvalue() == "s3sign: error: e\n"
    loud = io.StringIO()
    console = Console(verbosity=1, stderr=loud)
    console.info("one")
    console.info("two", level=2)
    assert loud.getvalue() == "s3sign: one\n"
