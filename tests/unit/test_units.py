from __future__ import annotations

import pytest

from s3sign.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43200), ("7d", 604800), ("300", 300), (" 2H ", 7200)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "1.5h", "-5m", "15 minutes", "1w", "abc"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("512KiB", 524288),
        ("5MiB", 5242880),
        ("1GB", 10**9),
        ("2k", 2048),
        ("3 MB", 3_000_000),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "x", "1.5MiB", "-1", "5 XB", "MiB"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (45, "45s"), (900, "15m"), (9000, "2h30m"), (601200, "6d23h")]
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (1023, "1023B"),
        (5 * 1024**2, "5MiB"),
        (int(1.5 * 1024**3), "1.5GiB"),
        (5 * 1024**4, "5TiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
