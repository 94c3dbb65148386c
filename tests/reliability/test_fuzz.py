"""Hostile input through the command line: never a traceback, always a documented exit code.

File names (unicode, control characters, very long, glob characters) through
``push --dry-run``; buckets, keys, sizes and flags through ``sign``; YAML
files through ``config show``. The backend's own endpoints are fuzzed in
tests/integration/test_backend_fuzz.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from s3sign.cli import app
from s3sign.errors import ExitCode
from tests.conftest import EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY
from tests.reliability.conftest import scale

DOCUMENTED = {int(code) for code in ExitCode} - {int(ExitCode.INTERNAL)}
EXAMPLES = scale(40, 400)
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": EXAMPLE_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": EXAMPLE_SECRET_KEY,
    "AWS_REGION": "eu-west-1",
}
names = st.text(
    st.characters(codec="utf-8", exclude_characters="/\x00"),
    min_size=1,
    max_size=300,
) | st.sampled_from(["*", "[a-", "**", "?x", "..", ".", "-rf", " ", "a\nb", "\x1b[31m"])
texts = st.text(st.characters(codec="utf-8"), max_size=80)


def check(result: object) -> None:
    code = getattr(result, "exit_code")  # noqa: B009 - a typer Result
    output = getattr(result, "stdout") + getattr(result, "stderr")  # noqa: B009
    assert code in DOCUMENTED, output
    assert "Traceback" not in output


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=names, size=st.integers(0, 2048))
def test_push_dry_run_with_hostile_file_names(
    tmp_path_factory: pytest.TempPathFactory, name: str, size: int
) -> None:
    root = tmp_path_factory.mktemp("names")
    try:
        (root / name).write_bytes(b"x" * size)
    except (OSError, ValueError):
        assume(False)  # the file system itself refuses the name
    for args in ([name], [name, "--literal"], ["."]):
        result = CliRunner().invoke(
            app,
            ["push", "run-1", *args, "--dry-run", "--base", str(root)],
            env={"PWD": str(root)},
        )
        check(result)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    bucket=texts,
    key=texts,
    size=st.one_of(st.integers(-5, 2**64).map(str), texts),
    extra=st.lists(
        st.sampled_from(
            [
                "--method",
                "get",
                "--content-type",
                "x",
                "--sha256",
                "zz",
                "--meta",
                "a=b",
                "--expires",
                "8d",
                "--post",
                "--max-size",
                "1",
                "--multipart",
                "-o",
                "env",
                "--provider",
                "r2",
                "--batch",
                "-",
                "--addressing",
                "path",
            ]
        ),
        max_size=4,
    ),
)
def test_sign_with_hostile_arguments(bucket: str, key: str, size: str, extra: list[str]) -> None:
    result = CliRunner().invoke(
        app, ["sign", bucket, key, "--size", size, *extra], env=CREDENTIALS, input=""
    )
    check(result)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=st.text(max_size=200) | st.dictionaries(texts, texts | st.integers()).map(str))
def test_config_files_of_any_content(
    tmp_path_factory: pytest.TempPathFactory, document: str
) -> None:
    path = tmp_path_factory.mktemp("config") / "s3sign.yaml"
    path.write_text(document)
    result = CliRunner().invoke(app, ["--config", str(path), "config", "show"])
    check(result)
    assert result.exit_code in (0, 3)
