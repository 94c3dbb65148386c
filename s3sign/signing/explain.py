"""``s3sign explain URL``: what a pre-signed URL allows, read from the URL alone.

The signature version, the bucket and key (either addressing style, AWS or a
custom endpoint), the credential scope (region, service, masked access key),
when it was signed and when it expires, and which headers are signed and so
must be sent as they were. A URL never says its method: that is only known
by checking the signature (``verify``) with the secret key.

Nothing here prints the signature or the session token.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

from s3sign.credentials import Credentials, mask
from s3sign.errors import UsageError
from s3sign.signing.sigv4 import (
    ALGORITHM,
    UNSIGNED_PAYLOAD,
    canonical_headers,
    sign_canonical,
    uri_encode,
)
from s3sign.units import format_duration

_AWS_HOST = re.compile(
    r"^(?:(?P<bucket>.+)\.)?s3(?:[.-](?:dualstack\.)?(?P<region>[a-z0-9-]+))?"
    r"\.amazonaws\.com(?:\.cn)?$"
)
_BOUND = {
    "content-length": "size (Content-Length)",
    "content-type": "content type (Content-Type)",
    "content-md5": "MD5 of the body (Content-MD5)",
    "x-amz-checksum-sha256": "SHA-256 of the body (x-amz-checksum-sha256)",
}
_HINT = "pass a whole pre-signed URL, in quotes (it holds '&')"
_SIGV4_PARAMETERS = (
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


@dataclass(frozen=True)
class Explanation:
    version: str  # "SigV4" or "SigV2"
    endpoint: str  # scheme://host[:port]
    bucket: str | None
    key: str | None
    addressing: str  # "virtual", "path"
    region: str | None
    service: str | None
    access_key: str  # masked
    signed_at: datetime | None
    expires_at: datetime
    signed_headers: tuple[str, ...]
    operation: tuple[tuple[str, str], ...]  # uploadId, partNumber ...
    has_session_token: bool

    def remaining(self, now: datetime) -> str:
        left = (self.expires_at - now).total_seconds()
        if left <= 0:
            return f"expired {format_duration(-left)} ago"
        return f"valid for {format_duration(left)} more"

    def binds(self) -> list[str]:
        """What the signature holds the request to, besides the method, bucket and key."""
        bound = [_BOUND[name] for name in self.signed_headers if name in _BOUND]
        meta = [name for name in self.signed_headers if name.startswith("x-amz-meta-")]
        if meta:
            bound.append("metadata " + ", ".join(meta))
        return bound

    def as_dict(self, now: datetime) -> dict[str, object]:
        return {
            "version": self.version,
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "key": self.key,
            "addressing": self.addressing,
            "region": self.region,
            "service": self.service,
            "accessKey": self.access_key,
            "signedAt": _iso(self.signed_at) if self.signed_at else None,
            "expiresAt": _iso(self.expires_at),
            "expired": self.expires_at <= now,
            "secondsLeft": max(0, int((self.expires_at - now).total_seconds())),
            "signedHeaders": list(self.signed_headers),
            "mustSend": [name for name in self.signed_headers if name != "host"],
            "binds": self.binds(),
            "operation": dict(self.operation),
            "sessionToken": self.has_session_token,
        }


def explain(url: str) -> Explanation:
    """Read ``url``; ``UsageError`` if it is not a whole pre-signed S3 URL."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{_short(text)} is not an http(s) URL", hint=_HINT)
    query = dict(_pairs(parts.query))
    host = parts.hostname
    endpoint = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    bucket, key, addressing = _bucket_and_key(host, parts.path)
    if "AWSAccessKeyId" in query and "Signature" in query:
        return _sigv2(query, endpoint, bucket, key, addressing)
    if "X-Amz-Algorithm" not in query:
        raise UsageError(
            "not a pre-signed S3 URL: it has no X-Amz-Signature parameters",
            hint="was it cut off, or is it a plain object URL?",
        )
    missing = [name for name in _SIGV4_PARAMETERS if name not in query]
    if missing:
        raise UsageError(f"the URL is incomplete: no {', '.join(missing)}", hint=_HINT)
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise UsageError(f"unknown signing algorithm {query['X-Amz-Algorithm']!r}")
    scope = query["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise UsageError("X-Amz-Credential is not ACCESS_KEY/DATE/REGION/SERVICE/aws4_request")
    try:
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        lifetime = int(query["X-Amz-Expires"])
    except ValueError:
        raise UsageError("X-Amz-Date or X-Amz-Expires is malformed", hint=_HINT) from None
    operation = tuple(
        (name, value) for name, value in query.items() if not name.startswith("X-Amz-")
    )
    return Explanation(
        version="SigV4",
        endpoint=endpoint,
        bucket=bucket,
        key=key,
        addressing=addressing,
        region=scope[2],
        service=scope[3],
        access_key=mask(scope[0]),
        signed_at=signed_at,
        expires_at=signed_at + timedelta(seconds=lifetime),
        signed_headers=tuple(query["X-Amz-SignedHeaders"].split(";")),
        operation=operation,
        has_session_token="X-Amz-Security-Token" in query,
    )


def verify(url: str, method: str, headers: dict[str, str], credentials: Credentials) -> str | None:
    """None if the signature is right for ``method`` and ``headers``; else why not.

    ``headers`` must give the value of each signed header but ``host``.
    """
    parts = urlsplit(url.strip())
    pairs = _pairs(parts.query)
    query = dict(pairs)
    access_key, date, region, service, _ = query["X-Amz-Credential"].split("/")
    if access_key != credentials.access_key:
        return (
            f"it was signed by access key {mask(access_key)}, and the local credentials are "
            f"{credentials.masked_access_key}"
        )
    values = {name.lower(): value for name, value in headers.items()}
    values["host"] = parts.netloc.rpartition("@")[2]
    signed = query["X-Amz-SignedHeaders"].split(";")
    absent = [name for name in signed if name not in values]
    if absent:
        raise UsageError(
            f"to check the signature, give the signed header(s) {', '.join(absent)}",
            hint="add --header 'NAME: VALUE' for each, as the request will send them",
        )
    block, names = canonical_headers([(name, values[name]) for name in signed])
    canonical_query = "&".join(
        f"{uri_encode(name)}={uri_encode(value)}"
        for name, value in sorted(pairs)
        if name != "X-Amz-Signature"
    )
    canonical_request = (
        f"{method.upper()}\n{parts.path or '/'}\n{canonical_query}\n{block}\n{names}\n"
        f"{UNSIGNED_PAYLOAD}"
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    expected = sign_canonical(
        canonical_request, credentials.secret_key, query["X-Amz-Date"], scope, region, service
    )
    if hmac.compare_digest(expected, query["X-Amz-Signature"]):
        return None
    return (
        f"the signature does not match a {method.upper()} with these headers and the local "
        "secret key: another method, other header values, or another secret"
    )


def render(explanation: Explanation, now: datetime) -> str:
    """The explanation for people, one fact a line."""
    e = explanation
    lines = [f"signature:   {e.version}"]
    if e.version == "SigV2":
        lines.append("             (deprecated by AWS; sign again with SigV4, e.g. s3sign sign)")
    lines += [
        f"endpoint:    {e.endpoint}",
        f"bucket:      {e.bucket or '(unknown)'}  ({e.addressing}-style)",
        f"key:         {e.key if e.key is not None else '(none: the bucket itself)'}",
    ]
    if e.region:
        lines.append(f"region:      {e.region}  (service {e.service})")
    token = "  + session token" if e.has_session_token else ""
    lines.append(f"access key:  {e.access_key}{token}")
    if e.signed_at:
        lines.append(f"signed at:   {_iso(e.signed_at)}")
    lines.append(f"expires at:  {_iso(e.expires_at)}  ({e.remaining(now)})")
    if e.operation:
        lines.append("operation:   " + ", ".join(f"{k}={v}" for k, v in e.operation))
    if e.version == "SigV4":
        must = [name for name in e.signed_headers if name != "host"]
        lines.append(
            "must send:   "
            + (", ".join(must) if must else "no headers besides Host")
            + "  (signed: values must match)"
        )
        bound = e.binds()
        lines.append("binds:       " + ("; ".join(bound) if bound else "nothing about the body"))
    lines.append("method:      not in the URL; s3sign explain --verify --method M checks one")
    return "\n".join(lines) + "\n"


def _bucket_and_key(host: str, path: str) -> tuple[str | None, str | None, str]:
    segments = path.lstrip("/")
    match = _AWS_HOST.match(host)
    if match and match.group("bucket"):
        return match.group("bucket"), unquote(segments) if segments else None, "virtual"
    bucket, _, key = segments.partition("/")
    return (unquote(bucket) or None), (unquote(key) if key else None), "path"


def _sigv2(
    query: dict[str, str], endpoint: str, bucket: str | None, key: str | None, addressing: str
) -> Explanation:
    try:
        expires_at = datetime.fromtimestamp(int(query["Expires"]), UTC)
    except (KeyError, ValueError, OverflowError):
        raise UsageError("the SigV2 URL has no valid Expires", hint=_HINT) from None
    return Explanation(
        version="SigV2",
        endpoint=endpoint,
        bucket=bucket,
        key=key,
        addressing=addressing,
        region=None,
        service=None,
        access_key=mask(query["AWSAccessKeyId"]),
        signed_at=None,
        expires_at=expires_at,
        signed_headers=(),
        operation=tuple(
            (k, v)
            for k, v in query.items()
            if k not in ("AWSAccessKeyId", "Signature", "Expires", "x-amz-security-token")
        ),
        has_session_token="x-amz-security-token" in query,
    )


def _pairs(query: str) -> list[tuple[str, str]]:
    """The query's name/value pairs, percent-decoded (``+`` stays ``+``, as in SigV4)."""
    pairs = []
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(text: str) -> str:
    """The start of what was given, without any query string (which may hold a signature)."""
    return repr(text.split("?", 1)[0][:60])
