"""``python -m tests.reliability.capped_push ARGS``: ``s3sign ARGS`` with its address space
capped (a runaway cannot take the machine) and its peak RSS, in KiB, written at exit to
the file named by ``S3SIGN_TEST_MAXRSS``."""

from __future__ import annotations

import atexit
import os
import resource
import sys

CAP = 2 * 1024**3  # address space; the RSS target (100 MiB) is checked by the test


def _report() -> None:
    """VmHWM, this process's own peak: ``ru_maxrss`` would start at the parent's (Linux
    keeps it across fork and exec), the size of the test run that started it."""
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["S3SIGN_TEST_MAXRSS"], "w") as out:
        out.write(peak)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))
    atexit.register(_report)
    from s3sign.cli import main

    sys.argv = ["s3sign", *sys.argv[1:]]
    main()
