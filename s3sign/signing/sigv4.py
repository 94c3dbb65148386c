"""AWS Signature Version 4, query-string form (pre-signed URLs). Pure functions, no I/O.

Follows "Authenticating Requests: Using Query Parameters (AWS Signature
Version 4)" in the Amazon S3 API reference. The payload is never hashed
(``UNSIGNED-PAYLOAD``); what binds the body is the signed headers
(``content-length``, ``content-type``, ``x-amz-checksum-sha256`` ...).
Proven byte-for-byte equal to botocore's ``S3SigV4QueryAuth`` in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SAFE = "-_.~"  # RFC 3986 unreserved, besides letters and digits


_ALL_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def amz_date(moment: datetime) -> str:
    """``20130524T000000Z`` for a UTC moment."""
    return (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}Z"
    )


def uri_encode(text: str) -> str:
    """Percent-encode everything but unreserved characters, as SigV4 requires."""
    return text if _ALL_UNRESERVED(text) else quote(text, safe=SAFE)


@lru_cache(maxsize=128)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key for one day, region and service (cached: it changes daily)."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), date.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(canonical header block, signed header list): names lowercased, values trimmed."""
    pairs = list(headers)
    layout, signed = _header_layout(tuple([name for name, _ in pairs]))
    return _header_block(layout, pairs), signed


def _header_block(layout: tuple[tuple[int, str], ...], pairs: list[tuple[str, str]]) -> str:
    return "".join([f"{name}:{' '.join(pairs[index][1].split())}\n" for index, name in layout])


@lru_cache(maxsize=256)  # every URL of a batch or a backend has one of a few header sets
def _header_layout(names: tuple[str, ...]) -> tuple[tuple[tuple[int, str], ...], str]:
    """For header names as given: (position, lowercased name) in signing order, and the
    signed header list."""
    lowered = [name.lower() for name in names]
    order = sorted(range(len(names)), key=lowered.__getitem__)
    layout = tuple([(index, lowered[index]) for index in order])
    return layout, ";".join([name for _, name in layout])


def presign_query(
    *,
    method: str,
    host: str,
    canonical_uri: str,
    headers: Iterable[tuple[str, str]],
    access_key: str,
    secret_key: str,
    token: str | None,
    region: str,
    service: str,
    timestamp: str,
    expires: int,
    query: Iterable[tuple[str, str]] = (),
) -> str:
    """The full query string of a pre-signed request, ``X-Amz-Signature`` last.

    ``canonical_uri`` is the already-encoded path exactly as it will be sent
    (S3 does not normalise it); ``headers`` are the headers besides ``host``
    that the client must send; ``query`` holds operation
    parameters (``partNumber``, ``uploadId`` ...), which come first in the URL
    the way botocore orders them.
    """
    pairs = [("host", host), *headers]
    names = tuple([name for name, _ in pairs])
    shared = _shared(access_key, secret_key, token, region, service, timestamp, expires, names)
    canonical_query, in_url_order = shared.canonical_query, shared.in_url_order
    if query:
        operation = [(uri_encode(name), uri_encode(value)) for name, value in query]
        canonical_query = _joined(sorted([*operation, *shared.auth]))
        in_url_order = _joined([*operation, *shared.auth])
    canonical_request = (
        f"{method}\n{canonical_uri}\n{canonical_query}\n"
        f"{_header_block(shared.layout, pairs)}\n{shared.signed_headers}\n{UNSIGNED_PAYLOAD}"
    )
    signature = _signature(shared.keyed, shared.to_sign, canonical_request)
    return f"{in_url_order}&X-Amz-Signature={signature}"


def sign_canonical(
    canonical_request: str, secret_key: str, timestamp: str, scope: str, region: str, service: str
) -> str:
    """The hex signature of a canonical request; ``scope`` is DATE/REGION/SERVICE/aws4_request."""
    keyed = _keyed_hmac(secret_key, scope[:8], region, service)
    return _signature(keyed, f"{ALGORITHM}\n{timestamp}\n{scope}\n".encode(), canonical_request)


def _signature(keyed: tuple[Hash, Hash], to_sign: bytes, canonical_request: str) -> str:
    """HMAC-SHA256 of the string to sign: ``to_sign`` + the canonical request's hex SHA-256."""
    hashed_request = hashlib.sha256(canonical_request.encode()).hexdigest().encode()
    inner, outer = keyed[0].copy(), keyed[1].copy()
    inner.update(to_sign + hashed_request)
    outer.update(inner.digest())
    return outer.hexdigest()


@lru_cache(maxsize=128)
def _keyed_hmac(secret_key: str, date: str, region: str, service: str) -> tuple[Hash, Hash]:
    """HMAC-SHA256 under the day's signing key, as its inner and outer hashes (RFC 2104).

    Each has already taken the padded key; copying them per URL costs a third
    of what keying ``hmac.digest`` anew does (OpenSSL 3 sets up HMAC slowly).
    """
    key = signing_key(secret_key, date, region, service).ljust(64, b"\0")  # SHA-256's block
    inner = hashlib.sha256(bytes([byte ^ 0x36 for byte in key]))
    outer = hashlib.sha256(bytes([byte ^ 0x5C for byte in key]))
    return inner, outer


class _Shared(NamedTuple):
    """What every URL signed within one second, with one set of header names, shares."""

    auth: tuple[tuple[str, str], ...]  # the encoded X-Amz-* parameters, in botocore's order
    canonical_query: str  # ... sorted and joined
    in_url_order: str  # ... joined as they are
    layout: tuple[tuple[int, str], ...]
    signed_headers: str
    to_sign: bytes  # the string to sign, but for the canonical request's hash
    keyed: tuple[Hash, Hash]


@lru_cache(maxsize=64)  # a batch or a backend signs many URLs within the same second
def _shared(
    access_key: str,
    secret_key: str,
    token: str | None,
    region: str,
    service: str,
    timestamp: str,
    expires: int,
    names: tuple[str, ...],
) -> _Shared:
    """The URL-independent part of signing: parameters, header layout, string-to-sign start.

    Names are constants, the date and expiry are digits, and header names are
    ``[a-z0-9-]`` joined by ``;``: only the credential and the token need quoting.
    """
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    layout, signed_headers = _header_layout(names)
    auth = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", uri_encode(f"{access_key}/{scope}")),
        ("X-Amz-Date", timestamp),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", signed_headers.replace(";", "%3B")),
    ]
    if token is not None:
        auth.append(("X-Amz-Security-Token", uri_encode(token)))
    return _Shared(
        tuple(auth),
        _joined(sorted(auth)),
        _joined(auth),
        layout,
        signed_headers,
        f"{ALGORITHM}\n{timestamp}\n{scope}\n".encode(),
        _keyed_hmac(secret_key, date, region, service),
    )


def _joined(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join([f"{name}={value}" for name, value in pairs])
