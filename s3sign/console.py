"""What the user sees on stderr: errors with hints, warnings, and ``-v`` logs.

stdout is for results only and is written by ``cli.py``. Colour only when
stderr is a terminal and ``NO_COLOR`` is unset; never a forced terminal.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

_RED, _YELLOW, _DIM, _RESET = "\033[31m", "\033[33m", "\033[2m", "\033[0m"


@dataclass
class Console:
    """Diagnostics for one command run. ``verbosity``: -1 quiet, 0 normal, 1 -v, 2 -vv."""

    verbosity: int = 0
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def color(self) -> bool:
        if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
            return False
        return bool(getattr(self.stderr, "isatty", lambda: False)())

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def error(self, message: str, hint: str = "") -> None:
        """``s3sign: error: ...`` and the hint on the next line; shown even with -q."""
        self._write(f"s3sign: {self._paint(_RED, 'error:')} {message}")
        if hint:
            self._write(f"  hint: {hint}")

    def note(self, message: str) -> None:
        """A line the user should see (a server's address, a summary); hidden by -q."""
        if self.verbosity >= 0:
            self._write(f"s3sign: {message}")

    def warning(self, message: str) -> None:
        if self.verbosity >= 0:
            self._write(f"s3sign: {self._paint(_YELLOW, 'warning:')} {message}")

    def info(self, message: str, level: int = 1) -> None:
        """A log line shown at ``-v`` (level 1) or ``-vv`` (level 2). Never pass secrets."""
        if self.verbosity >= level:
            self._write(self._paint(_DIM, f"s3sign: {message}"))

    def _write(self, line: str) -> None:
        print(line, file=self.stderr, flush=True)
