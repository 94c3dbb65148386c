"""Where an object lives: bucket + key + region + endpoint -> host and path.

Virtual-hosted style (``bucket.s3.REGION.amazonaws.com/key``) on AWS; path
style (``endpoint/bucket/key``) for custom endpoints, whose DNS and TLS
certificates rarely cover ``bucket.host``, and for bucket names with dots,
which break the ``*.s3.amazonaws.com`` certificate. ``--addressing`` overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from s3sign.config import URL_CHARACTERS, Addressing
from s3sign.errors import UsageError
from s3sign.s3limits import MAX_KEY_BYTES

_AWS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_COMPAT_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)").search
# What a URL may hold unencoded (RFC 3986): an endpoint with a space or a quote is refused,
# so a signed URL never needs escaping in JSON or a shell word.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch  # needs no percent-encoding


@dataclass(frozen=True)
class Endpoint:
    """An S3 service root: ``https://s3.eu-west-1.amazonaws.com`` or a custom one."""

    scheme: str
    host: str  # the Host header: lowercase, with the port unless it is the scheme's default
    base_path: str  # "" or "/prefix", for stores mounted below a path
    is_aws: bool
    port_in_url: str = ""  # ":443" when the user wrote a default port: kept, as botocore does
    is_ip_address: bool = False  # no bucket name can go in front of an IP: path style only

    @classmethod
    def for_region(cls, region: str) -> Endpoint:
        """AWS's regional endpoint (``.amazonaws.com.cn`` in the China partition)."""
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        return cls("https", f"s3.{region}.{suffix}", "", is_aws=True)

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """A custom endpoint such as ``http://127.0.0.1:8333`` (already validated)."""
        if not URL_CHARACTERS(url):
            raise ValueError(f"{url!r} has characters a URL cannot hold unencoded")
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        is_ip_address = ":" in host or bool(_IPV4.match(host))
        if ":" in host:
            host = f"[{host}]"
        port_in_url = ""
        if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
            host = f"{host}:{parts.port}"
        elif parts.port is not None:
            port_in_url = f":{parts.port}"
        return cls(
            parts.scheme,
            host,
            parts.path.rstrip("/"),
            is_aws=False,
            port_in_url=port_in_url,
            is_ip_address=is_ip_address,
        )


class ObjectLocation(NamedTuple):  # a tuple: made once per signed URL, so cheap to build
    """What a signer needs: the Host header, the encoded path, the URL before the query."""

    host: str
    path: str
    url: str


@lru_cache(maxsize=256)  # a batch signs into few buckets; only passing names are cached
def check_bucket(bucket: str, strict: bool) -> None:
    """Refuse a bucket name S3 would refuse (AWS's rules when ``strict``)."""
    hint = "bucket names are 3-63 lowercase letters, digits, dots and hyphens"
    if strict:
        if not _AWS_BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
            raise UsageError(f"invalid bucket name {bucket!r}", hint=hint)
        if (
            bucket.startswith("xn--")
            or bucket.endswith("-s3alias")
            or ".-" in bucket
            or "-." in bucket
        ):
            raise UsageError(f"invalid bucket name {bucket!r}", hint=hint)
    elif not _COMPAT_BUCKET.match(bucket):
        raise UsageError(f"invalid bucket name {bucket!r}", hint=hint)


def check_key(key: str) -> None:
    """Refuse a key S3 or an HTTP client would mangle."""
    if not key:
        raise UsageError("the object key is empty", hint="give a key like logs/build.txt")
    try:
        size = len(key) if key.isascii() else len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError("the object key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise UsageError(
            f"the object key is {size} bytes long; S3 allows at most {MAX_KEY_BYTES} (UTF-8)",
            hint="shorten the key",
        )
    if (key[0] == "." or "/." in key) and _DOT_SEGMENT(key):  # most keys have no dot segment
        raise UsageError(
            f"the object key {key!r} has a '.' or '..' segment",
            hint="HTTP clients rewrite such paths, so the URL would point elsewhere; rename it",
        )


def locate(endpoint: Endpoint, bucket: str, key: str, addressing: Addressing) -> ObjectLocation:
    """The host and encoded path for an object under the chosen addressing style.

    Virtual-host style falls back to path style where it cannot work, as
    botocore does: an IP-address endpoint, or a dotted bucket name over TLS.
    """
    host, path_prefix, url_prefix = bucket_root(endpoint, bucket, addressing)
    path = path_prefix + encode_key(key)
    return ObjectLocation(host, path, url_prefix + path)


def encode_key(key: str) -> str:
    """The key as it goes in the URL path: percent-encoded but for ``/`` and ``~``."""
    return key if _PLAIN_PATH(key) else quote(key, safe="/~")


def locate_bucket(endpoint: Endpoint, bucket: str, addressing: Addressing) -> ObjectLocation:
    """The bucket itself (for ListObjectsV2): ``/bucket`` in path style, ``/`` virtual."""
    host, path_prefix, url_prefix = bucket_root(endpoint, bucket, addressing)
    path = path_prefix.rstrip("/") or "/"
    return ObjectLocation(host, path, url_prefix + path)


def bucket_root(endpoint: Endpoint, bucket: str, addressing: Addressing) -> tuple[str, str, str]:
    """(Host header, path prefix ending in "/", scheme://host[:port]) for a bucket."""
    if addressing == "auto":
        addressing = "virtual" if endpoint.is_aws and "." not in bucket else "path"
    dotted_over_tls = "." in bucket and endpoint.scheme == "https"
    if addressing == "virtual" and not endpoint.is_ip_address and not dotted_over_tls:
        host, path_prefix = f"{bucket}.{endpoint.host}", f"{endpoint.base_path}/"
    else:
        host, path_prefix = endpoint.host, f"{endpoint.base_path}/{bucket}/"
    return host, path_prefix, f"{endpoint.scheme}://{host}{endpoint.port_in_url}"
