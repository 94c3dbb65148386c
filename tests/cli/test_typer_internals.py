"""The typer internals s3sign uses, all behind s3sign/cli/typer_internals.py: when a typer
release moves one, this says which, instead of every command failing at start-up."""

from __future__ import annotations

import importlib

import pytest

# (module, name): what s3sign/cli/typer_internals.py takes from typer's private modules
USED = [
    ("typer._click", "ClickException"),
    ("typer._click", "Context"),
    ("typer._click.exceptions", "NoArgsIsHelpError"),
    ("typer._completion_classes", "completion_init"),
    ("typer._completion_shared", "get_completion_script"),
]


@pytest.mark.parametrize(("module", "name"), USED)
def test_typer_still_has_what_s3sign_takes_from_its_internals(module: str, name: str) -> None:
    found = importlib.import_module(module)
    assert hasattr(found, name), (
        f"typer moved {module}.{name}: update s3sign/cli/typer_internals.py "
        "(and the typer bound in pyproject.toml)"
    )


def test_the_completion_script_is_still_made_for_our_command() -> None:
    from s3sign.cli.typer_internals import get_completion_script

    script = get_completion_script(
        prog_name="s3sign", complete_var="_S3SIGN_COMPLETE", shell="bash"
    )
    assert "_S3SIGN_COMPLETE" in script
    assert "s3sign" in script
