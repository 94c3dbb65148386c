"""One line of ``sign --batch``: a JSON object read as a ``SignRequest``, strictly (its
fields, their types, a digest in base64 or hex), with the batch's defaults for what it
leaves out; or a ``LineError`` that becomes that line's error in the output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from s3sign.signing.presign import Method, SignRequest, normalize_digest
from s3sign.units import parse_duration

_METHODS: frozenset[str] = frozenset({"PUT", "GET", "HEAD", "DELETE"})
_FIELDS = frozenset(
    {"bucket", "key", "method", "size", "contentType", "sha256", "md5", "meta", "expires"}
)


class LineError(Exception):
    """This line cannot be signed: ``code`` and a message for the output line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Defaults:
    """What a line that does not say gets: from flags, then config, then built-in defaults."""

    method: Method = "PUT"
    content_type: str | None = None
    expires: int = 900


def parse_line(
    line: bytes, defaults: Defaults, cap: Callable[[int], int] | None = None
) -> SignRequest | None:
    """One input line as a request, checked for shape and types (``LineError`` if not).

    None for a blank line. ``cap`` shortens the expiry (temporary credentials);
    the rest of the checks happen when the request is signed.
    """
    try:
        fields = _decode(line.decode())
    except UnicodeDecodeError:
        raise LineError("invalid_json", "the line is not UTF-8") from None
    except ValueError as exc:
        if not line.strip():
            return None
        raise LineError("invalid_json", f"not JSON: {exc}") from None
    if type(fields) is dict and len(fields) == 3:  # the common {"bucket", "key", "size"}
        bucket, key, size = fields.get("bucket"), fields.get("key"), fields.get("size")
        if type(bucket) is str and type(key) is str and type(size) is int:
            method, expires = defaults.method, defaults.expires
            content_type = defaults.content_type if method == "PUT" else None
            expires = cap(expires) if cap else expires
            return SignRequest(bucket, key, method, size, content_type, None, None, (), expires)
    if not isinstance(fields, dict):
        raise LineError("invalid_json", "a line must be a JSON object")
    if not fields.keys() <= _FIELDS:
        unknown = sorted(fields.keys() - _FIELDS)[0]
        raise LineError("invalid_request", f"unknown field {unknown!r}; known: {_known()}")
    asked = _text(fields, "method")
    method = defaults.method if asked is None else cast(Method, asked.upper())
    if method not in _METHODS:
        raise LineError("invalid_request", f"method {method!r} is not PUT, GET, HEAD or DELETE")
    expires = _expires(fields.get("expires"), defaults.expires)
    sha256, md5 = _text(fields, "sha256"), _text(fields, "md5")
    return SignRequest(
        bucket=_required(fields, "bucket"),
        key=_required(fields, "key"),
        method=method,
        size=_size(fields.get("size")),
        content_type=_text(
            fields, "contentType", defaults.content_type if method == "PUT" else None
        ),
        sha256=normalize_digest(sha256, 32) if sha256 is not None else None,
        md5=normalize_digest(md5, 16) if md5 is not None else None,
        meta=_meta(fields.get("meta")),
        expires=cap(expires) if cap else expires,
    )


_DECODER = json.JSONDecoder()


def _decode(text: str) -> Any:
    """``json.loads(text)``, a little faster for the usual line with no blanks around it."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return _DECODER.decode(text)  # leading blanks, or not JSON: it says which
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return _DECODER.decode(text)  # raises: extra data after the object
    return value


# The core's messages name the flags of a single `sign`; a line has fields.
_FLAGS_AS_FIELDS = {
    "--size/--file": "size",
    "--content-type": "contentType",
    "--sha256": "sha256",
    "--md5": "md5",
    "--meta": "meta",
    "--expires": "expires",
}


def per_line(message: str) -> str:
    for flag, name in _FLAGS_AS_FIELDS.items():
        message = message.replace(flag, repr(name))
    return message


def error_line(number: int, code: str, message: str) -> str:
    return json.dumps({"line": number, "error": {"code": code, "message": message}}) + "\n"


def _known() -> str:
    return ", ".join(sorted(_FIELDS))


def _text(fields: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = fields.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise LineError("invalid_request", f"{name!r} must be a string")
    return value


def _required(fields: dict[str, Any], name: str) -> str:
    value = _text(fields, name)
    if value is None:
        raise LineError("invalid_request", f"{name!r} is missing")
    return value


def _size(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineError("invalid_request", "'size' must be a whole number of bytes")
    return value


def _meta(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise LineError("invalid_request", "'meta' must be an object of strings")
    return tuple(value.items())


def _expires(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise LineError("invalid_request", f"'expires': {exc}") from None
    raise LineError("invalid_request", "'expires' must be seconds or a duration like 15m")
