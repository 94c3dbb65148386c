"""A command whose extra is not installed says which to install (exit 3), not "internal
error ... a bug in s3sign" (exit 70). .ci/run checks the same in a real base-only venv."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from s3sign.cli import run
from s3sign.cli.environment import Environment


@pytest.mark.parametrize(
    ("args", "missing", "extra"),
    [
        (["token", "run-1"], "jwt", "server"),
        (["serve"], "uvicorn", "server"),
        (["demo"], "jwt", "local"),
    ],
)
def test_a_missing_extra_is_a_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, args: list[str], missing: str, extra: str
) -> None:
    for name in list(sys.modules):
        if name == missing or name.startswith((f"{missing}.", "s3sign.server", "s3sign.local")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # import fails: ModuleNotFoundError
    stderr = io.StringIO()
    env = {"S3SIGN_SERVER_SECRET": "s" * 40, "S3SIGN_BUCKET": "b", "HOME": "/nonexistent"}
    environment = Environment(io.BytesIO(), io.StringIO(), stderr, env)
    assert run(args, environment) == 3
    assert f"pip install 's3sign-cli[{extra}]'" in stderr.getvalue()
    assert "bug" not in stderr.getvalue()


def test_any_other_missing_module_is_still_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """yaml is a core dependency: without it the install is broken, which is a bug to report
    (exit 70 with the hint), never a traceback."""
    (tmp_path / "s3sign.yaml").write_text("region: eu-west-1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "yaml", None)
    stderr = io.StringIO()
    environment = Environment(io.BytesIO(), io.StringIO(), stderr, {"HOME": str(tmp_path)})
    assert run(["config", "show"], environment) == 70
    assert "internal error: ModuleNotFoundError" in stderr.getvalue()
    assert "Traceback" not in stderr.getvalue()
