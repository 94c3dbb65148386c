"""The README tells the truth about how to test and what the exit codes mean."""

from __future__ import annotations

import re
from pathlib import Path

from s3sign.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    for name in ("DEMO_COMMAND", "TEST_COMMAND"):
        match = re.search(rf'^{name}="(.+)"$', ci, re.MULTILINE)
        assert match is not None
        assert f'eval "${name}"' in ci
        assert match.group(1) in first_block


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


def test_ci_recipes_parse_and_use_real_flags() -> None:
    """docs/ci.md's GitHub and GitLab recipes: valid YAML, every s3sign flag exists, and
    the backend's OIDC rules shown are rules it takes."""
    import yaml
    from typer.testing import CliRunner

    from s3sign.cli import app
    from s3sign.server.oidc import oidc_rules

    doc = (REPO / "docs" / "ci.md").read_text()
    recipes = [yaml.safe_load(text) for text in re.findall(r"```yaml\n(.*?)```", doc, re.DOTALL)]
    assert len(recipes) == 5
    assert all(isinstance(recipe, dict) for recipe in recipes)
    [rules] = [recipe["oidc"] for recipe in recipes if "oidc" in recipe]
    assert len(oidc_rules(rules, 7 * 86400)) == 3
    commands = re.findall(r"s3sign (token|push|seal) ([^\n)]*)", doc.split("## A shell")[0])
    assert {name for name, _ in commands} == {"token", "push", "seal"}
    for name, arguments in commands:
        help_text = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"}).stdout
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", arguments):
            assert flag in help_text, f"docs/ci.md: s3sign {name} has no {flag}"


def test_no_install_line_names_the_unrelated_pypi_package() -> None:
    """PyPI's "s3sign" is someone else's (0.2.0, 2016): every install line names
    s3sign-cli, or installs from this checkout."""
    texts = {path: path.read_text() for path in [REPO / "README.md", REPO / "Dockerfile"]}
    texts.update({path: path.read_text() for path in (REPO / "docs").glob("*.md")})
    wrong = re.compile(r"(?:pip|pipx|uv tool|uv pip) install\s+(?:-\S+\s+)*['\"]?s3sign(?![-\w])")
    for path, text in texts.items():
        assert not wrong.search(text), f"{path.name}: {wrong.search(text)}"
    assert 'name = "s3sign-cli"' in (REPO / "pyproject.toml").read_text()
    assert "pipx install s3sign-cli" in README


def test_deploy_md_shows_the_configuration_the_cluster_tests_run() -> None:
    """docs/deploy.md's HAProxy and s3sign configuration is the local cluster's, verbatim:
    the documented setup is the tested one (tests/cluster/)."""
    doc = (REPO / "docs" / "deploy.md").read_text()
    for name in ("haproxy.cfg", "s3sign.yaml"):
        text = (REPO / "deploy" / "local_cluster" / name).read_text()
        assert text in doc, f"docs/deploy.md does not show deploy/local_cluster/{name} as is"
