"""The curl session in docs/protocol.md works, as written, against ``s3sign serve``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import SECRET, Backend

pytestmark = pytest.mark.integration
DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def curl_session() -> str:
    text = DOC.read_text()
    section = text.split("## A curl session", 1)[1]
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
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", curl_session()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "true"
