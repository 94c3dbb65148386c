"""Run one command and measure it: wall time, peak RSS, exit code, stderr tail.

Peak RSS comes from GNU time (``/usr/bin/time``), which forks the command
from its own small process. Measuring here with fork/vfork and ``wait4``
would not do: Linux charges the parent's resident pages to the child's
``ru_maxrss`` when the child execs, and this benchmark's process is large.
Without GNU time, a small Python launcher forks the command instead, and
the figure includes that launcher (about 10 MiB).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}')\n"
)


@dataclass(frozen=True)
class Measured:
    wall: float
    peak_kib: int
    exit_code: int
    stderr_tail: str


def measure_process(argv: Sequence[str], env: Mapping[str, str]) -> Measured:
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.NamedTemporaryFile("r") as report:
        if gnu_time:
            wrapped = [gnu_time, "-f", "%M %x", "-o", report.name, *argv]
        else:
            wrapped = [sys.executable, "-c", _LAUNCHER, report.name, *argv]
        start = time.perf_counter()
        done = subprocess.run(
            wrapped, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        wall = time.perf_counter() - start
        fields = report.read().split()
    peak, code = (int(fields[-2]), int(fields[-1])) if len(fields) >= 2 else (0, done.returncode)
    return Measured(wall, peak, code, done.stderr.decode(errors="replace").strip()[-300:])
