"""Which stored names ``ls`` and ``pull`` patterns choose, and what prefix they list."""

from __future__ import annotations

import pytest

from s3sign.transfer.listing import listing_prefix, matcher

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
