"""Diagnostics: colour only on a terminal without NO_COLOR; -q silences all but errors."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

from s3sign.cli.console import Console


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_unless_no_color() -> None:
    terminal = FakeTerminal()
    Console(stderr=terminal).error("boom", "try again")
    assert "\033[31m" in terminal.getvalue()
    plain = FakeTerminal()
    Console(stderr=plain, env={"NO_COLOR": "1"}).error("boom", "try again")
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


def test_lines_from_many_threads_never_run_together(tmp_path: Path) -> None:
    """Upload threads log at once at -vv; each line must come out whole."""
    # Unbuffered, as stderr is under PYTHONUNBUFFERED: each write is a system call.
    raw = (tmp_path / "stderr").open("wb", buffering=0)
    with io.TextIOWrapper(raw, write_through=True) as stderr:
        console = Console(verbosity=2, stderr=stderr)

        def log(thread: int) -> None:
            for index in range(300):
                console.info(f"uploading t{thread}/f{index}.bin (4KiB)", level=2)

        threads = [threading.Thread(target=log, args=(number,)) for number in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = (tmp_path / "stderr").read_text().split("\n")
    assert lines.pop() == ""
    assert len(lines) == 8 * 300
    assert all(re.fullmatch(r"s3sign: uploading t\d/f\d+\.bin \(4KiB\)", line) for line in lines)
