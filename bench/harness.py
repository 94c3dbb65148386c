"""What the benchmarks share: measuring a command, and running `s3sign serve`.

``measure_process`` runs one command: wall time, peak RSS, exit code, stderr tail.

Peak RSS comes from GNU time (``/usr/bin/time``), which forks the command
from its own small process. Measuring here with fork/vfork and ``wait4``
would not do: Linux charges the parent's resident pages to the child's
``ru_maxrss`` when the child execs, and this benchmark's process is large.
Without GNU time, a small Python launcher forks the command instead, and
the figure includes that launcher (about 10 MiB).
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from s3sign.children import die_with_parent
from s3sign.local.seaweed import LocalS3, free_ports

SECRET = "bench-secret-" + "s" * 32


def clean_environment() -> dict[str, str]:
    """This process's environment without AWS_*/S3SIGN_* variables, and with bytecode caching.

    A user's ``pip install`` compiles s3sign to .pyc; PYTHONDONTWRITEBYTECODE
    (set on some CI machines) would make every measured run compile it again.
    """
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "S3SIGN_")) and key != "PYTHONDONTWRITEBYTECODE"
    }


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


def machine() -> str:
    """This machine, for a benchmark's heading."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def store_environment(store: LocalS3) -> dict[str, str]:
    """``clean_environment()`` with the store's credentials and region (for the AWS CLI,
    s5cmd and the backend), rclone's remote ``bench:`` for it, and no instance-metadata
    calls."""
    env = clean_environment()
    env.update(
        AWS_ACCESS_KEY_ID=store.credentials.access_key,
        AWS_SECRET_ACCESS_KEY=store.credentials.secret_key,
        AWS_REGION=store.region,
        AWS_DEFAULT_REGION=store.region,
        AWS_EC2_METADATA_DISABLED="true",
        RCLONE_CONFIG_BENCH_TYPE="s3",
        RCLONE_CONFIG_BENCH_PROVIDER="Other",
        RCLONE_CONFIG_BENCH_ENDPOINT=store.endpoint_url,
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=store.credentials.access_key,
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=store.credentials.secret_key,
        RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true",
    )
    return env


@contextmanager
def backend(store: LocalS3, **settings: str) -> Iterator[str]:
    """``s3sign serve`` (quiet, one worker) for ``store`` on a free port; its URL."""
    port = free_ports(1)[0]
    env = store_environment(store)
    env.update(
        S3SIGN_ENDPOINT_URL=store.endpoint_url,
        S3SIGN_SERVER_SECRET=SECRET,
        **{f"S3SIGN_{key.upper()}": value for key, value in settings.items()},
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "s3sign",
            "-q",
            "serve",
            "--bucket",
            store.bucket,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - gone if this run is killed
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("s3sign serve did not start")
        time.sleep(0.1)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def metric(url: str, name: str) -> int:
    """A counter from the backend's ``/metrics``: the sum of its samples (all labels)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return int(sum(float(value) for sample, value in samples if sample.split("{")[0] == name))
