"""The README tells the truth about how to test and what the exit codes mean."""

from __future__ import annotations

import re
from pathlib import Path

from s3sign.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_readme_shows_the_test_command_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    match = re.search(r'^TEST_COMMAND="(.+)"$', ci, re.MULTILINE)
    assert match is not None
    command = match.group(1)
    assert 'eval "$TEST_COMMAND"' in ci
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert command in first_block


def test_readme_exit_code_table_matches_the_code() -> None:
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", README, re.MULTILINE))
    assert {int(code) for code in table} == {int(code) for code in ExitCode}


def test_readme_help_excerpts_match_the_cli() -> None:
    from typer.testing import CliRunner

    from s3sign.cli import app

    excerpts = re.findall(r"```text\n\$ s3sign ([^\n]*--help)\n(.*?)```", README, re.DOTALL)
    assert excerpts, "the README shows at least one --help"
    for command, shown in excerpts:
        result = CliRunner().invoke(app, command.split(), env={"COLUMNS": "80"})
        assert result.exit_code == 0
        assert result.stdout.rstrip() == shown.rstrip(), f"README's 's3sign {command}' is stale"
