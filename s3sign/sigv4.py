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
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SAFE = "-_.~"  # RFC 3986 unreserved, besides letters and digits
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def amz_date(moment: datetime) -> str:
    """``20130524T000000Z`` for a UTC moment."""
    return moment.strftime(AMZ_DATE_FORMAT)


def uri_encode(text: str) -> str:
    """Percent-encode everything but unreserved characters, as SigV4 requires."""
    return quote(text, safe=SAFE)


@lru_cache(maxsize=128)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key for one day, region and service (cached: it changes daily)."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), date.encode(), "sha256")
    for part in (region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def canonical_headers(headers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(canonical header block, signed header list) for lowercase-named headers."""
    ordered = sorted((name, " ".join(value.split())) for name, value in headers)
    block = "".join(f"{name}:{value}\n" for name, value in ordered)
    return block, ";".join(name for name, _ in ordered)


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
    that the client must send, with lowercase names; ``query`` holds operation
    parameters (``partNumber``, ``uploadId`` ...), which come first in the URL
    the way botocore orders them.
    """
    date = timestamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    header_block, signed_headers = canonical_headers([("host", host), *headers])
    params = [
        *query,
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", timestamp),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", signed_headers),
    ]
    if token is not None:
        params.append(("X-Amz-Security-Token", token))
    encoded = [(uri_encode(name), uri_encode(value)) for name, value in params]
    canonical_request = "\n".join(
        (
            method,
            canonical_uri,
            "&".join(f"{name}={value}" for name, value in sorted(encoded)),
            header_block,
            signed_headers,
            UNSIGNED_PAYLOAD,
        )
    )
    string_to_sign = "\n".join(
        (ALGORITHM, timestamp, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = signing_key(secret_key, date, region, service)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    in_url_order = "&".join(f"{name}={value}" for name, value in encoded)
    return f"{in_url_order}&X-Amz-Signature={signature}"
