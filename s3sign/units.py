"""Durations and sizes as people write them: ``90s``, ``15m``, ``7d``; ``5MiB``, ``1GB``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_duration(text: str) -> int:
    """Seconds in ``text`` (``90s``, ``15m``, ``12h``, ``7d`` or plain seconds).

    Raises ``ValueError`` with a message fit for the user; the caller decides
    which error class (usage or configuration) it becomes.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write it like 90s, 15m, 12h or 7d")
    number, unit = match.groups()
    return int(number) * _DURATION_UNITS[unit.lower()]


def parse_size(text: str) -> int:
    """Bytes in ``text`` (``1048576``, ``512KiB``, ``5MiB``, ``1GB``; a bare K/M/G is binary)."""
    match = _SIZE.match(text)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size; write bytes, or like 512KiB, 5MiB, 1GB")
    number, unit = match.groups()
    return int(number) * _SIZE_UNITS[unit.lower()]


def format_duration(seconds: float) -> str:
    """A short human form: ``45s``, ``15m``, ``2h30m``, ``6d23h``."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value]
    return "".join(shown[:2]) or "0s"


def format_size(size: float) -> str:
    """``512B``, ``5MiB``, ``1.5GiB``: binary units, at most one decimal."""
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f}".rstrip("0").rstrip(".") + unit


@lru_cache(maxsize=64)  # the server and --batch stamp every URL of a second with one time
def iso_utc(moment: datetime) -> str:
    """``2026-01-31T12:00:00Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}


def http_date(value: str) -> datetime | None:
    """An HTTP ``Date`` (``Sun, 06 Nov 1994 08:49:37 GMT``); None for anything else.
    (``email.utils`` would cost every push 9 ms of imports.)"""
    parts = value.split()
    if len(parts) != 6 or parts[5] != "GMT":
        return None
    try:
        hour, minute, second = (int(field) for field in parts[4].split(":"))
        month = _MONTHS[parts[2]]
        return datetime(int(parts[3]), month, int(parts[1]), hour, minute, second, tzinfo=UTC)
    except (KeyError, ValueError):
        return None
