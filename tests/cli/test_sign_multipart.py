"""``sign --multipart / --complete / --abort``: the ETags file and the refusals (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3sign.errors import UsageError
from s3sign.signing.multipart import read_etags
from tests.cli.conftest import Run

pytestmark = pytest.mark.usefixtures("env_credentials")


@pytest.mark.parametrize(
    "text",
    [
        '[{"partNumber": 2, "etag": "\\"b\\""}, {"partNumber": 1, "etag": "a"}]',
        '{"2": "b", "1": "a"}',
        '2 "b"\n1 a\n\n',
    ],
)
def test_etags_as_json_list_object_or_lines(text: str) -> None:
    assert read_etags(text) == [(1, "a"), (2, "b")]


@pytest.mark.parametrize("text", ["", "[]", "1 a\n1 b", "0 a", "x y", '[{"etag": "a"}]'])
def test_bad_etags_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        read_etags(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--multipart",), "--multipart needs --size"),
        (("--multipart", "--size", "1", "--post"), "--post cannot be used with multipart"),
        (("--complete", "u-1"), "--complete needs --etags"),
        (("--complete", "u-1", "--abort", "u-1"), "one of --multipart, --complete and --abort"),
        (("--abort", "u-1", "--size", "5"), "--size and --content-type belong to --multipart"),
        (("--size", "5", "--part-size", "5MiB"), "belong to --multipart and --complete"),
        (("--complete", "u-1", "--etags", "/nonexistent/etags"), "No such file"),
    ],
)
def test_refusals(run: Run, args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run("sign", "my-bucket", "big.bin", *args)
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert message in result.stderr
