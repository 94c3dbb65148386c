"""Soak, on demand: pushes of mixed sizes for a bounded time; memory of push and serve flat.

S3SIGN_RELIABILITY=soak S3SIGN_SOAK_SECONDS=1800 pytest tests/reliability/test_soak.py --no-cov
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3sign.local.seaweed import LocalS3
from tests.integration.conftest import running_backend
from tests.integration.test_push import assert_no_secrets, push_env, run_id
from tests.reliability.conftest import MODE
from tests.reliability.test_faults import mixed_tree

MiB = 1024 * 1024
SECONDS = float(os.environ.get("S3SIGN_SOAK_SECONDS", "1800"))  # read before tests clear S3SIGN_*


@pytest.mark.skipif(MODE != "soak", reason="on demand: S3SIGN_RELIABILITY=soak")
def test_soak(local_s3: LocalS3, tmp_path: Path) -> None:
    seconds = SECONDS
    root = tmp_path / "src"
    mixed_tree(root, 150, big=20 * MiB)
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    assert gnu_time, "the soak test reads push's peak RSS through GNU time"
    push_peaks: list[int] = []
    serve_rss: list[int] = []
    with running_backend(
        local_s3, tmp_path / "serve.log", multipart_threshold="8MiB", part_size="5MiB"
    ) as backend:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            run = run_id()
            env = push_env(backend, run)
            report = tmp_path / "rss"
            done = subprocess.run(
                [
                    gnu_time,
                    "-f",
                    "%M",
                    "-o",
                    str(report),
                    sys.executable,
                    "-m",
                    "s3sign",
                    "push",
                    run,
                    "mixed",
                    "-v",
                ],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            assert_no_secrets(done.stdout + done.stderr, env["S3SIGN_TOKEN"])
            push_peaks.append(int(report.read_text().split()[-1]))
            status = Path(f"/proc/{backend.process.pid}/status").read_text()
            serve_rss.append(int(status.split("VmRSS:")[1].split()[0]))
    print(  # for the record, with -s
        f"soak: {len(push_peaks)} pushes in {seconds:.0f} s; push peak RSS "
        f"{min(push_peaks) // 1024}-{max(push_peaks) // 1024} MiB; serve RSS "
        f"{serve_rss[0] // 1024} -> {serve_rss[-1] // 1024} MiB (max {max(serve_rss) // 1024})"
    )
    assert len(push_peaks) >= 2
    quarter = max(1, len(serve_rss) // 4)
    # Flat: the last quarter of the runs uses no more than the first quarter, give or take.
    assert max(serve_rss[-quarter:]) <= max(serve_rss[:quarter]) + 20 * 1024, serve_rss
    assert max(push_peaks[-quarter:]) <= max(push_peaks[:quarter]) + 10 * 1024, push_peaks
    assert max(push_peaks) < 100 * 1024
