"""Which stored names ``ls`` and ``pull`` patterns (and ``--files-from`` names) choose, and
what prefix they list."""

from __future__ import annotations

import unicodedata

import pytest

from s3sign.transfer.listing import Chosen, listing_prefix, matcher

NAMES = [
    "a.txt",
    "logs/b.log",
    "logs/deep/c d.json",
    "logs/deep/e.log",
    "reports/junit.xml",
    "ü/é.txt",
]


@pytest.mark.parametrize(
    ("patterns", "chosen"),
    [
        ([], NAMES),
        (["logs"], ["logs/b.log", "logs/deep/c d.json", "logs/deep/e.log"]),
        (["logs/"], ["logs/b.log", "logs/deep/c d.json", "logs/deep/e.log"]),
        (["logs/*.log"], ["logs/b.log"]),
        (["logs/**/*.log"], ["logs/b.log", "logs/deep/e.log"]),
        (["**/*.json"], ["logs/deep/c d.json"]),
        (["*.txt"], ["a.txt"]),
        (["?.txt", "reports/*"], ["a.txt", "reports/junit.xml"]),
        (["logs/deep/[ce]*"], ["logs/deep/c d.json", "logs/deep/e.log"]),
        (["logs/deep/[!c]*"], ["logs/deep/e.log"]),
        (["ü"], ["ü/é.txt"]),
        (["nothing"], []),
        (["a.txt/"], ["a.txt"]),
    ],
)
def test_patterns_choose_names_as_push_would(patterns: list[str], chosen: list[str]) -> None:
    wanted = matcher(patterns)
    assert [name for name in NAMES if wanted(name)] == chosen


@pytest.mark.parametrize(
    ("patterns", "prefix"),
    [
        ([], ""),
        (["logs"], ""),
        (["logs/*.log"], "logs/"),
        (["logs/deep/*", "logs/b.log"], "logs/"),
        (["logs/deep/*", "reports/*"], ""),
        (["**/*.json"], ""),
        (["logs/deep/c*"], "logs/deep/"),
    ],
)
def test_the_listed_prefix_covers_every_pattern(patterns: list[str], prefix: str) -> None:
    assert listing_prefix(patterns) == prefix


@pytest.mark.parametrize(
    ("patterns", "names", "chosen", "missing"),
    [
        ([], ["a.txt"], ["a.txt"], []),
        ([], [], [], []),  # an empty --files-from chooses nothing, not everything
        ([], ["logs/deep", "nope.txt"], ["logs/deep/c d.json", "logs/deep/e.log"], ["nope.txt"]),
        ([], ["logs/*.log"], [], ["logs/*.log"]),  # as written: no glob
        (["*.txt"], ["reports/junit.xml"], ["a.txt", "reports/junit.xml"], []),
        ([], [unicodedata.normalize("NFD", "ü/é.txt")], ["ü/é.txt"], []),  # stored as NFC
    ],
)
def test_names_as_written_choose_files_and_folders_and_must_be_there(
    patterns: list[str], names: list[str], chosen: list[str], missing: list[str]
) -> None:
    wanted = Chosen(patterns, names)
    assert [name for name in NAMES if wanted(name)] == chosen
    assert wanted.missing() == missing
    assert all(name.startswith(wanted.prefix) for name in chosen)
