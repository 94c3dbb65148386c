"""The shell examples in docs/ work, as written, against ``s3sign serve``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from s3sign.local.seaweed import free_ports
from tests.integration.conftest import SECRET, Backend

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs"


def shell_block(doc: str, heading: str) -> str:
    """The first ```sh block after ``heading`` in ``docs/doc``."""
    section = (DOCS / doc).read_text().split(heading, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_curl_session_in_protocol_doc(backend: Backend, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BACKEND": backend.url,
        "S3SIGN_SERVER_SECRET": SECRET,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    session = shell_block("protocol.md", "## A curl session")
    session += shell_block("protocol.md", "## Reading a run back")  # continues it
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", session],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["true", "true"]


@pytest.mark.parametrize(
    ("case", "exit_code", "says"),
    [
        ("stored", 0, "all artifacts stored and verified"),
        ("no files", 2, "bad arguments, or no files matched"),
        ("other run's token", 4, "the token was refused or missing"),
        ("backend down", 5, "the backend was unreachable"),
    ],
)
def test_exit_code_script_in_ci_doc(
    backend: Backend, tmp_path: Path, case: str, exit_code: int, says: str
) -> None:
    script = tmp_path / "push.sh"
    script.write_text(shell_block("ci.md", "## A shell script that acts on the exit code"))
    work = tmp_path / "work"
    (work / "logs").mkdir(parents=True)
    (work / "reports").mkdir()
    if case != "no files":
        (work / "logs" / "build.log").write_text("ok\n")
        (work / "reports" / "junit.xml").write_text("<testsuite/>\n")
    run_id = "ci-doc-" + re.sub(r"[^a-z]+", "-", case)
    down = f"http://127.0.0.1:{free_ports(1)[0]}"
    env = {
        **os.environ,
        "RUN_ID": run_id,
        "S3SIGN_BACKEND": down if case == "backend down" else backend.url,
        "S3SIGN_TOKEN": backend.token("another-run" if "token" in case else run_id),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["sh", str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == exit_code, done.stdout + done.stderr
    assert says in done.stdout
    if case == "stored":
        assert '"status": "success"' in (work / "artifacts.json").read_text()
