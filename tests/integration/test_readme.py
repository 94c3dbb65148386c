"""The README's quick start runs as written (on a free port instead of 8080)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s3sign.local.seaweed import free_ports

pytestmark = pytest.mark.integration
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(title: str) -> str:
    body = README.split(f"## {title}", 1)[1]
    match = re.search(r"```sh\n(.*?)```", body, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the quick start waits with curl")
def test_quick_start_without_aws(tmp_path: Path, isolated_environment: Path) -> None:
    port = str(free_ports(1)[0])
    script = section("Quick start on your machine, without AWS").replace("8080", port)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "build.log").write_text("hello from the README\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3SIGN_"))}
    env.update(
        S3SIGN_PORT=port,  # `serve --local` listens there; the URLs were rewritten to match
        HOME=str(isolated_environment),
        AWS_EC2_METADATA_DISABLED="true",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    env.pop("XDG_DATA_HOME", None)
    wrapped = f"set -e\ntrap 'kill %1 2>/dev/null; wait' EXIT\n{script}"
    done = subprocess.run(
        ["bash", "-c", wrapped],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run my-run: 1 uploaded" in done.stderr
