"""Which files a push uploads, and under which names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3sign.errors import UsageError
from s3sign.transfer.files import expand_paths


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "logs" / "nested deep" / "ü").mkdir(parents=True)
    (tmp_path / "logs" / "a.txt").write_text("a")
    (tmp_path / "logs" / "b+c.json").write_text("{}")
    (tmp_path / "logs" / "nested deep" / "x y.log").write_text("xy")
    (tmp_path / "logs" / "nested deep" / "ü" / "z.txt").write_text("z")
    (tmp_path / "logs" / "empty").write_bytes(b"")
    (tmp_path / "logs" / ".hidden").write_text("h")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    (tmp_path / "logs" / "link-out").symlink_to(outside, target_is_directory=True)
    (tmp_path / "logs" / "link-file").symlink_to(tmp_path / "logs" / "a.txt")
    os.mkfifo(tmp_path / "logs" / "fifo")
    return tmp_path


def names(paths: list[str], base: Path, literal: bool = False) -> list[str]:
    return [f.name for f in expand_paths(paths, base, literal=literal).files]


def test_directory_recursion_skips_symlinked_dirs_and_special_files(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    assert names(["logs"], tree) == [
        "logs/a.txt",
        "logs/b+c.json",
        "logs/empty",
        "logs/link-file",
        "logs/nested deep/x y.log",
        "logs/nested deep/ü/z.txt",
    ]


def test_hidden_files_and_folders_are_left_out_unless_named_or_asked_for(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As GitHub's upload-artifact does since v4.4: `push RUN .` sends no .git/config."""
    monkeypatch.chdir(tree)
    (tree / ".git").mkdir()
    (tree / ".git" / "config").write_text("[remote] url = https://token@example.com")
    (tree / ".env").write_text("SECRET=1")
    found = expand_paths(["."], tree)
    assert not any(f.name.startswith(".") or "/." in f.name for f in found.files)
    assert (found.hidden.count, found.hidden.examples) == (3, [".env", ".git", "logs/.hidden"])
    assert found.unmatched == ()
    globbed = expand_paths(["*", "logs/*"], tree)
    assert "logs/.hidden" not in [f.name for f in globbed.files]
    assert names([".env", "logs/.hidden"], tree) == [".env", "logs/.hidden"]  # named as is
    everything = expand_paths(["."], tree, include_hidden=True)
    assert {".env", ".git/config", "logs/.hidden"} <= {f.name for f in everything.files}
    assert everything.hidden.count == 0


def test_a_symlink_out_of_the_base_is_left_out_unless_followed(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    outside = tree.parent / f"{tree.name}-outside" / "secret.txt"
    (tree / "logs" / "creds").symlink_to(outside)
    found = expand_paths(["logs"], tree)
    assert "logs/creds" not in [f.name for f in found.files]
    assert "logs/link-file" in [f.name for f in found.files]  # its target is inside
    assert (found.outside.count, found.outside.examples) == (1, ["logs/creds"])
    followed = expand_paths(["logs"], tree, follow_symlinks=True)
    assert "logs/creds" in [f.name for f in followed.files]
    assert followed.outside.count == 0


def test_globs_expanded_when_the_shell_did_not(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    assert names(["logs/*.txt"], tree) == ["logs/a.txt"]
    assert names(["logs/**/*.txt"], tree) == ["logs/a.txt", "logs/nested deep/ü/z.txt"]
    assert names(["logs/?.txt", "logs/[ab]*"], tree) == ["logs/a.txt", "logs/b+c.json"]
    assert "logs/link-out/secret.txt" not in names(["logs/**"], tree)


def test_sizes_duplicates_and_unmatched(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    expansion = expand_paths(["logs/a.txt", "./logs/a.txt", "logs/*.txt", "nope/*", "gone"], tree)
    assert [(f.name, f.size) for f in expansion.files] == [("logs/a.txt", 1)]
    assert expansion.unmatched == ("nope/*", "gone")


def test_literal_names_with_glob_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "[weird]*.txt").write_text("w")
    (tmp_path / "w.txt").write_text("w")
    assert names(["[weird]*.txt"], tmp_path, literal=True) == ["[weird]*.txt"]
    assert names(["[weird]*.txt"], tmp_path) == ["[weird]*.txt"]  # exists: taken as written
    assert names(["*.txt"], tmp_path) == ["[weird]*.txt", "w.txt"]
    assert expand_paths(["*.txt"], tmp_path, literal=True).unmatched == ("*.txt",)


def test_listed_paths_are_taken_as_written_and_named_once(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--files-from: no glob expansion; a directory is walked; the same file named by PATHS
    and by the list goes once; a missing one is unmatched."""
    monkeypatch.chdir(tree)
    listed = ["logs/a.txt", "logs/*.json", "logs/nested deep", "missing.txt"]
    expansion = expand_paths(["logs/[ab]*"], tree, listed=listed)
    assert [f.name for f in expansion.files] == [
        "logs/a.txt",
        "logs/b+c.json",
        "logs/nested deep/x y.log",
        "logs/nested deep/ü/z.txt",
    ]
    assert expansion.unmatched == ("logs/*.json", "missing.txt")


def test_names_are_relative_to_base(tree: Path) -> None:
    assert names([str(tree / "logs" / "a.txt")], tree / "logs") == ["a.txt"]
    with pytest.raises(UsageError, match="outside the base directory") as info:
        expand_paths([str(tree / "logs" / "a.txt")], tree / "logs" / "nested deep")
    assert "--base" in info.value.hint
    with pytest.raises(UsageError, match="not a directory"):
        expand_paths(["x"], tree / "logs" / "a.txt")


def test_excluded_names_are_left_out_with_gitignore_rules(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathspec import GitIgnoreSpec

    monkeypatch.chdir(tree)
    spec = GitIgnoreSpec.from_lines(["*.txt", "!a.txt", "nested deep/"])
    found = expand_paths(["logs"], tree, excluded=spec.match_file)
    kept = ["logs/a.txt", "logs/b+c.json", "logs/empty", "logs/link-file"]
    assert [f.name for f in found.files] == kept
    assert found.excluded.examples == ["logs/nested deep/x y.log", "logs/nested deep/ü/z.txt"]


def test_a_recursive_glob_lists_each_file_once(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``logs/**`` matches the folders and the files in them: each file comes once."""
    monkeypatch.chdir(tree)
    found = expand_paths(["logs/**"], tree)
    listed = [f.name for f in found.files]
    assert len(listed) == len(set(listed)) == found.count
    assert "logs/nested deep/ü/z.txt" in listed


def test_names_that_share_a_key_are_refused_folder_by_folder(tmp_path: Path) -> None:
    """Two spellings of one name in one folder (NFC and NFD), as files and as folders: each
    file is listed with the reason, none is dropped, the others are untouched."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    (tmp_path / f"{nfc}.txt").write_text("1")
    (tmp_path / f"{nfd}.txt").write_text("2")
    for folder in (nfc, nfd):
        (tmp_path / "d" / folder).mkdir(parents=True)
        (tmp_path / "d" / folder / "x.log").write_text(folder)
    (tmp_path / "plain.txt").write_text("3")
    found = {f.name: f.conflict for f in expand_paths([str(tmp_path)], tmp_path).files}
    assert found["plain.txt"] is None
    for name in (f"{nfc}.txt", f"{nfd}.txt", f"d/{nfc}/x.log", f"d/{nfd}/x.log"):
        assert "same key once Unicode-normalised" in (found[name] or ""), name
    assert ascii(f"{nfd}.txt") in (found[f"{nfc}.txt"] or "")
