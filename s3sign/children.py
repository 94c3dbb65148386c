"""Child processes that end with their parent: the embedded store, ``sign --batch``'s
forked signers, the tests' and benchmarks' servers."""

from __future__ import annotations

import contextlib
import signal
import subprocess


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: have the kernel kill the child when its parent dies.

    SIGKILL, not SIGTERM: only a parent that could not stop it cleanly (killed,
    crashed) gets here, and SeaweedFS can take many seconds to shut down under
    load. Its volumes and filer store are safe against a crash; a normal stop
    goes through :meth:`LocalS3.stop` (SIGTERM, then SIGKILL after a timeout).
    """
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; nothing when it has ended."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
