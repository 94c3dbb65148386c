"""What a command may touch outside itself: its standard streams, whether they are
terminals, and the environment variables. Injected (as httpie does), so that a test runs a
command in-process with its own streams and variables, and the process's own are read in
this one place."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO


def _isatty(stream: object) -> bool:
    try:
        return bool(getattr(stream, "isatty", lambda: False)())
    except ValueError:  # closed
        return False


@dataclass(frozen=True)
class Environment:
    """The streams and variables of one run of the command line (the process's by default)."""

    stdin: BinaryIO = field(default_factory=lambda: sys.stdin.buffer)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @property
    def stderr_isatty(self) -> bool:
        return _isatty(self.stderr)

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stdin_isatty(self) -> bool:
        return _isatty(self.stdin)

    @property
    def color(self) -> bool:
        """Colour on stderr: a terminal, and neither ``NO_COLOR`` nor ``TERM=dumb``."""
        if self.env.get("NO_COLOR") or self.env.get("TERM") == "dumb":
            return False
        return self.stderr_isatty

    @property
    def live(self) -> bool:
        """Whether a live display may redraw stderr (a terminal that is not ``dumb``)."""
        return self.stderr_isatty and self.env.get("TERM") != "dumb"
