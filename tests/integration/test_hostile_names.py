"""Nothing private pushed by default; nothing a file name says becomes a log line or a
terminal command; a malformed token is a credentials error. The real CLI and ``serve``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Backend
from tests.integration.test_backend import read_back
from tests.integration.test_push import push, push_on_terminal, run_id

pytestmark = pytest.mark.integration


def test_hidden_files_and_symlinks_out_of_the_tree_stay_home(
    backend: Backend, tmp_path: Path
) -> None:
    work = tmp_path / "files"
    (work / ".git").mkdir(parents=True)
    (work / ".git" / "config").write_text("[remote] url = https://token@example.com\n")
    (work / ".env").write_text("SECRET=1\n")
    (work / "report.xml").write_text("<ok/>\n")
    (tmp_path / "credentials").write_text("aws_secret_access_key = x\n")
    (work / "creds").symlink_to(tmp_path / "credentials")
    run = run_id()
    done = push(backend, run, ".", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "1 uploaded" in done.stderr
    assert "left out 2 hidden files or folders (.env, .git): --include-hidden takes them" in (
        done.stderr
    )
    assert "left out 1 symlink out of --base (creds): --follow-symlinks takes them" in (done.stderr)
    for name in (".env", ".git/config", "creds"):
        assert read_back(backend, f"runs/{run}/{name}").status_code == 404
    asked = push(backend, run, ".", "--include-hidden", "--follow-symlinks", cwd=work)
    assert asked.returncode == 0, asked.stderr
    assert "4 uploaded" in asked.stderr
    assert read_back(backend, f"runs/{run}/creds").content == b"aws_secret_access_key = x\n"


def test_exclude_and_exclude_from_leave_out_what_matches(backend: Backend, tmp_path: Path) -> None:
    work = tmp_path / "files"
    (work / "build" / "cache").mkdir(parents=True)
    (work / "build" / "cache" / "big.o").write_text("o\n")
    (work / "build" / "report.xml").write_text("<ok/>\n")
    (work / "debug.log").write_text("log\n")
    (work / "keep.log").write_text("keep\n")
    (tmp_path / "ignore").write_text("# from a file\nbuild/cache/\n")
    run = run_id()
    args = [".", "--exclude", "*.log", "--exclude", "!keep.log"]
    args += ["--exclude-from", str(tmp_path / "ignore")]
    dry = push(backend, run, *args, "--dry-run", cwd=work)
    assert dry.returncode == 0, dry.stderr
    assert sorted(line.split()[-1] for line in dry.stdout.splitlines()) == [
        f"runs/{run}/build/report.xml",
        f"runs/{run}/keep.log",
    ]
    assert "left out 2 files (debug.log, build/cache/big.o): as --exclude asked" in dry.stderr
    done = push(backend, run, *args, cwd=work)
    assert done.returncode == 0, done.stderr
    assert "2 uploaded" in done.stderr
    assert read_back(backend, f"runs/{run}/debug.log").status_code == 404
    missing = push(backend, run, ".", "--exclude-from", str(tmp_path / "nope"), cwd=work)
    assert missing.returncode == 2
    assert "--exclude-from" in missing.stderr


NASTY = "x\n::error title=pwned::y \x1b]0;owned\x07\x1b[2J.txt"


def test_a_file_name_cannot_start_a_log_line_or_drive_the_terminal(
    backend: Backend, tmp_path: Path
) -> None:
    """Piped stderr, as in CI: the name is shown escaped, on the line it belongs to."""
    work = tmp_path / "files"
    work.mkdir()
    (work / NASTY).write_text("n\n")
    run = run_id()
    done = push(backend, run, ".", "-vv", cwd=work)
    assert done.returncode == 1, done.stderr  # the backend refuses a control character
    assert not any(line.startswith("::") for line in done.stderr.splitlines()), done.stderr
    assert "\x1b" not in done.stderr
    assert "\x07" not in done.stderr
    assert "x\\n::error title=pwned::y \\x1b]0;owned\\x07\\x1b[2J.txt" in done.stderr
    listed = push(backend, run, ".", "--dry-run", cwd=work)  # stdout: one line per file
    assert len(listed.stdout.splitlines()) == 1, listed.stdout
    assert "\x1b" not in listed.stdout


def test_rich_markup_in_names_is_shown_as_written_on_a_terminal(
    backend: Backend, tmp_path: Path
) -> None:
    """`a[/]b.txt` (folder `a[`, file `]b.txt`) once ended a push on a terminal with exit 70."""
    work = tmp_path / "files"
    (work / "a[").mkdir(parents=True)
    (work / "a[" / "]b.txt").write_text("b\n")
    (work / "test_x[param].xml").write_text("<x/>\n")
    (work / "broken[red].log").write_text("oops\n")
    run = run_id()
    code, screen = push_on_terminal(backend, run, ".", cwd=work, columns=200)
    assert code == 0, screen
    assert "3 uploaded" in screen
    assert read_back(backend, f"runs/{run}/a[/]b.txt").content == b"b\n"


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "tökén", "two words"])
def test_a_malformed_token_is_a_credentials_error(
    backend: Backend, tmp_path: Path, token: str
) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    done = push(backend, run_id(), "a.txt", cwd=tmp_path, token=token)
    assert done.returncode == 4, done.stderr
    assert "the run token holds" in done.stderr
    assert "Traceback" not in done.stderr
