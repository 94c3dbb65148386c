"""What the user sees on stderr: errors with hints, warnings, and ``-v`` logs.

stdout is for results only and is written by the commands. Colour only when
stderr is a terminal and ``NO_COLOR`` is unset; never a forced terminal.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from s3sign.units import format_size

if TYPE_CHECKING:  # only named in annotations: `sign` starts without the push machinery
    from s3sign.transfer.report import FileOutcome, PushReport

_WRITING = threading.Lock()
_RED, _YELLOW, _DIM, _RESET = "\033[31m", "\033[33m", "\033[2m", "\033[0m"
# Line breaks, ESC and the other C0/C1 controls, and the bidirectional overrides.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``): a file name
    or a peer's message can neither start a line of its own in a CI log (``::error::``)
    nor drive the terminal."""
    return _UNPRINTABLE.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


@dataclass
class Console:
    """Diagnostics for one command run. ``verbosity``: -1 quiet, 0 normal, 1 -v, 2 -vv."""

    verbosity: int = 0
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    env: Mapping[str, str] = field(default_factory=dict)  # NO_COLOR, TERM

    @property
    def color(self) -> bool:
        if self.env.get("NO_COLOR") or self.env.get("TERM") == "dumb":
            return False
        return bool(getattr(self.stderr, "isatty", lambda: False)())

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def error(self, message: str, hint: str = "") -> None:
        """``s3sign: error: ...`` and the hint on the next line; shown even with -q."""
        self._write(f"s3sign: {self._paint(_RED, 'error:')} {printable(message)}")
        if hint:
            self._write(f"  hint: {printable(hint)}")

    def note(self, message: str) -> None:
        """A line the user should see (a server's address, a summary); hidden by -q."""
        if self.verbosity >= 0:
            self._write(f"s3sign: {printable(message)}")

    def warning(self, message: str) -> None:
        if self.verbosity >= 0:
            self._write(f"s3sign: {self._paint(_YELLOW, 'warning:')} {printable(message)}")

    def info(self, message: str, level: int = 1) -> None:
        """A log line shown at ``-v`` (level 1) or ``-vv`` (level 2). Never pass secrets."""
        if self.verbosity >= level:
            self._write(self._paint(_DIM, f"s3sign: {printable(message)}"))

    def _write(self, line: str) -> None:
        # One write per line, under a lock: upload threads log at once, and print()'s
        # separate newline let their lines run together.
        with _WRITING:
            self.stderr.write(line + "\n")
            self.stderr.flush()


# --- push progress: a live display on a terminal, plain lines elsewhere ----------------


class PlainReporter:
    """For CI logs: no control characters, a status line every ``every`` seconds."""

    def __init__(self, console: Console, every: float = 10.0, doing: str = "pushing") -> None:
        import time

        self._console, self._every, self._clock = console, every, time.monotonic
        self._doing = doing
        pulling = doing == "pulling"  # the report's "uploaded" is "arrived, checked"
        self._each, self._arrived = (
            ("downloading", "downloaded") if pulling else ("uploading", "uploaded")
        )
        self._lock = threading.Lock()
        self._files = self._done = self._total = self._sent = 0
        self._started = self._last = self._clock()

    def start(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self._files, self._total = files, total_bytes
            self._started = self._last = self._clock()
        noun = "file" if files == 1 else "files"
        self._console.note(f"{self._doing} {files:,} {noun}, {format_size(total_bytes)}")

    def file_started(self, name: str, size: int) -> None:
        self._console.info(f"{self._each} {name} ({format_size(size)})", level=2)

    def advanced(self, name: str, delta: int) -> None:
        with self._lock:
            self._sent += delta
        self._maybe_status()

    def retrying(self, name: str, attempt: int, reason: str) -> None:
        self._console.info(f"retrying {name} after attempt {attempt}: {reason}")

    def notice(self, message: str) -> None:
        self._console.warning(message)

    def file_finished(self, outcome: FileOutcome) -> None:
        with self._lock:
            self._done += 1
        if outcome.status == "failed":
            self._console.warning(f"failed {outcome.file_name}: {outcome.error}")
        else:
            status = self._arrived if outcome.status == "uploaded" else outcome.status
            self._console.info(f"{status} {outcome.file_name} ({format_size(outcome.size)})")
        self._maybe_status()

    def finish(self, report: PushReport) -> None:
        pass

    def _maybe_status(self) -> None:
        now = self._clock()
        with self._lock:
            if now - self._last < self._every:
                return
            self._last = now
            speed = self._sent / max(now - self._started, 1e-9)
            line = (
                f"{self._done}/{self._files} files, {format_size(max(self._sent, 0))}/"
                f"{format_size(self._total)}, {format_size(speed)}/s"
            )
        self._console.note(line)


class LiveReporter:
    """For a terminal: an overall bar and one bar per upload in flight (rich, on stderr)."""

    def __init__(self, console: Console, concurrency: int) -> None:
        from rich.console import Console as RichConsole
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._console = console
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.description}", table_column=None),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=RichConsole(file=console.stderr, no_color=not console.color),
            transient=False,
        )
        self._overall = self._progress.add_task("total", total=0)
        self._tasks: dict[str, Any] = {}
        self._files = self._done = 0
        self._limit = concurrency

    def start(self, files: int, total_bytes: int) -> None:
        self._files = files
        self._progress.update(self._overall, total=total_bytes, description=self._title())
        self._progress.start()

    def _title(self) -> str:
        return f"[bold]{self._done}/{self._files} files"

    def file_started(self, name: str, size: int) -> None:
        with self._lock:
            if name not in self._tasks and len(self._tasks) < self._limit:
                self._tasks[name] = self._progress.add_task(_label(name), total=size)

    def advanced(self, name: str, delta: int) -> None:
        self._progress.advance(self._overall, delta)
        task = self._tasks.get(name)
        if task is not None:
            self._progress.advance(task, delta)

    def retrying(self, name: str, attempt: int, reason: str) -> None:
        task = self._tasks.get(name)
        if task is not None:
            self._progress.update(task, description=f"{_label(name)} [yellow](retry {attempt})")

    def notice(self, message: str) -> None:
        from rich.text import Text

        self._progress.console.print(Text(f"warning: {printable(message)}", style="yellow"))

    def file_finished(self, outcome: FileOutcome) -> None:
        with self._lock:
            self._done += 1
            task = self._tasks.pop(outcome.file_name, None)
        if task is not None:
            self._progress.remove_task(task)
        if outcome.status == "failed":
            from rich.text import Text

            line = f" {printable(outcome.file_name)}: {printable(outcome.error or '')}"
            self._progress.console.print(Text.assemble(Text("failed", style="red"), line))
        self._progress.update(self._overall, description=self._title())

    def finish(self, report: PushReport) -> None:
        self._progress.stop()


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _label(name: str) -> str:
    """A file name as a bar's description: escaped, shortened, its ``[...]`` not markup."""
    from rich.markup import escape

    return escape(_short(printable(name)))


def summary(
    console: Console, report: PushReport, fatal: str | None = None, done: str = "uploaded"
) -> None:
    """The final lines on stderr: counts, bytes, time, speed, and every failure's reason
    (except ``fatal``, the error that cut the push short, which the caller says once).
    ``done``: what the files that arrived were (uploaded, downloaded)."""
    seconds = max(report.seconds, 1e-9)
    uploaded = report.bytes("uploaded")
    console.note(
        f"run {report.run_id}: {report.count('uploaded')} {done} ({format_size(uploaded)}), "
        f"{report.count('skipped')} skipped, {report.count('failed') + report.not_listed} failed, "
        f"in {seconds:.1f}s ({format_size(uploaded / seconds)}/s)"
        + (f", {report.retries} retries" if report.retries else "")
    )
    for reason, failures in report.failures.items():
        if reason == fatal:
            continue
        if failures.count <= len(failures.names):
            for name in failures.names:
                console.error(f"{name}: {reason}")
        else:
            first, second = failures.names[:2]
            console.error(f"{failures.count:,} files ({first}, {second}, ...): {reason}")
    if report.not_listed:
        console.note(
            f"{report.not_listed:,} of the failed were not reached before the push stopped"
        )
