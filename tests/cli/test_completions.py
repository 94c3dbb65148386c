"""Shell completion: the checked-in scripts are what the CLI generates, and they complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Run

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_checked_in_scripts_are_up_to_date(run: Run, shell: str) -> None:
    result = run("completion", shell)
    assert result.exit_code == 0
    assert result.stdout == (COMPLETIONS / f"s3sign.{shell}").read_text(), (
        f"regenerate: s3sign completion {shell} > completions/s3sign.{shell}"
    )


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("s3sign si", "1", "sign"),
        ("s3sign push --che", "2", "--checksum"),
        ("s3sign config ", "2", "show"),
    ],
)
def test_bash_completion_answers(words: str, cword: str, expected: str) -> None:
    env = {
        **os.environ,
        "_S3SIGN_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": cword,
    }
    done = subprocess.run(
        [sys.executable, "-m", "s3sign"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert expected in done.stdout.split()
