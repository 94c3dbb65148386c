"""``s3sign doctor``: check, one line each, what a signed URL depends on.

Credentials, region, the endpoint's reachability and clock (SigV4 refuses
requests more than 15 minutes off), access to the bucket, what the store
enforces on a pre-signed PUT (with scratch objects under ``PREFIX/.s3sign/``,
deleted again), and the backend. Each check says what it found and, when it
fails, what to do. Its calls follow the same rules (CA bundles, proxies) as a
push's: :mod:`s3sign.http.transport`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from s3sign.codec import from_wire
from s3sign.config import Settings
from s3sign.credentials import Credentials, resolve_credentials
from s3sign.errors import S3SignError
from s3sign.http.connections import Connections
from s3sign.http.transport import Peer, Transport
from s3sign.http.wire import network_problem
from s3sign.protocol import ServerInfo
from s3sign.s3xml import s3_error
from s3sign.server.storecheck import describe
from s3sign.signing.presign import Presigner, resolve_endpoint_url, resolve_region
from s3sign.units import format_duration, http_date

SKEW_LIMIT = 5 * 60  # seconds; S3 allows 15 minutes, but clocks drift further between checks
TIMEOUT = 10.0  # seconds: each answer
KEEP = 64 * 1024  # of an answer's body: an error document, or the start of a listing
LONGEST = 8 * 1024 * 1024  # bytes read of any answer (a list of 10,000 buckets): 42 s at most


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def run_checks(settings: Settings, bucket: str | None) -> list[Check]:
    """Every check that applies to these settings, in order; later ones need earlier ones."""
    checks: list[Check] = []
    credentials: Credentials | None = None
    try:
        credentials = resolve_credentials(settings.profile)
        expiry = ""
        if credentials.expires_at is not None:
            left = (credentials.expires_at - datetime.now(UTC)).total_seconds()
            expiry = f", expire in {format_duration(left)}" if left > 0 else ", EXPIRED"
        checks.append(
            Check(
                "credentials",
                credentials.expires_at is None or expiry != ", EXPIRED",
                f"{credentials.source} ({credentials.masked_access_key}){expiry}",
            )
        )
    except S3SignError as exc:
        checks.append(Check("credentials", False, exc.message, exc.hint))
    region = None
    try:
        region = resolve_region(settings)
        checks.append(Check("region", True, region))
    except S3SignError as exc:
        checks.append(Check("region", False, exc.message, exc.hint))
    if region is None:
        return checks
    try:
        endpoint = resolve_endpoint_url(settings)
    except S3SignError as exc:
        return [*checks, Check("endpoint", False, exc.message, exc.hint)]
    presigner = Presigner(
        credentials or Credentials("-", "-"), region, endpoint, settings.addressing
    )
    root = f"{presigner.endpoint.scheme}://{presigner.endpoint.host}/"
    try:
        transport = settings.transport
        s3 = _connections(transport, "s3")
    except S3SignError as exc:  # a proxy variable or CA bundle that cannot be used
        return [*checks, Check("endpoint", False, exc.message, exc.hint)]
    checks.append(_clock_and_reachability(s3, root))
    if bucket and credentials is not None and checks[-1].ok:
        checks.append(_bucket_access(s3, presigner, bucket))
        if checks[-1].ok:
            checks.append(_store_rules(presigner, bucket, settings, transport))
    s3.close()
    if settings.backend:
        checks.append(_backend(transport, settings.backend))
    return checks


def _connections(transport: Transport, peer: Peer) -> Connections:
    return Connections(transport, peer, TIMEOUT)


def _get(http: Connections, url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the start of the body of a GET (however long the body is)."""
    kept = bytearray()

    def keep(block: bytes | memoryview) -> None:
        kept.extend(block[: KEEP - len(kept)])

    response = http.fetch(url, {}, keep, LONGEST)
    return response.status, response.headers, bytes(kept) or response.data


def _clock_and_reachability(s3: Connections, root: str) -> Check:
    try:
        _, headers, _ = _get(s3, root)
    except OSError as exc:
        return Check(
            "endpoint",
            False,
            f"{root} is unreachable: {network_problem(exc)}",
            "check --endpoint-url, the network and any proxy (https_proxy, no_proxy)",
        )
    date = http_date(headers.get("date", ""))
    if date is None:
        return Check("endpoint", True, f"{root} answers (no Date header to compare clocks)")
    skew = (datetime.now(UTC) - date).total_seconds()
    if abs(skew) < 2:  # the Date header has whole seconds
        return Check("endpoint", True, f"{root} answers; the clocks agree")
    detail = f"{root} answers; this clock is {format_duration(abs(skew))} " + (
        "ahead" if skew > 0 else "behind"
    )
    if abs(skew) > SKEW_LIMIT:
        return Check(
            "endpoint",
            False,
            detail,
            "fix this machine's clock (NTP): SigV4 refuses requests 15 minutes off",
        )
    return Check("endpoint", True, detail)


def _bucket_access(s3: Connections, presigner: Presigner, bucket: str) -> Check:
    url = presigner.sign_bucket_get(bucket, (("list-type", "2"), ("max-keys", "1")))
    try:
        status, _, body = _get(s3, url)
    except OSError as exc:
        return Check("bucket", False, f"{bucket}: {network_problem(exc)}")
    if status == 200:
        return Check("bucket", True, f"{bucket}: listing allowed with these credentials")
    error = s3_error(body)
    code = error[0] if error else f"HTTP {status}"
    hints = {
        "NoSuchBucket": "check the bucket name",
        "AccessDenied": "the credentials may not read this bucket (s3:ListBucket)",
        "SignatureDoesNotMatch": "the secret key does not match the access key",
        "InvalidAccessKeyId": "the access key is unknown to this endpoint",
        "PermanentRedirect": "the bucket is in another region: pass --region",
        "AuthorizationHeaderMalformed": "the bucket is in another region: pass --region",
    }
    return Check("bucket", False, f"{bucket}: {code}", hints.get(code, ""))


def _store_rules(
    presigner: Presigner, bucket: str, settings: Settings, transport: Transport
) -> Check:
    """What the store enforces: informative (a store that checks no checksum is a fact to
    know, not a fault to fix here), so never a failure; 'not checked' without write access."""
    from s3sign.server.storecheck import check_store
    from s3sign.signing.store import ObjectStore, StoreError

    prefix, rules = settings.key_prefix, settings.object_rules  # PUTs as the backend's
    try:
        checks = check_store(ObjectStore(lambda: presigner, bucket, transport, rules), prefix)
    except StoreError as exc:
        return Check(
            "store", True, f"not checked: a scratch PUT under {prefix}/.s3sign/ failed ({exc})"
        )
    detail = describe(checks)
    if not (checks.sha256 or checks.md5):
        detail += " (push binds no checksum here: only sizes vouch for the bytes)"
    return Check("store", True, detail)


def _backend(transport: Transport, url: str) -> Check:
    try:
        http = _connections(transport, "backend")
    except S3SignError as exc:
        return Check("backend", False, exc.message, exc.hint)
    try:
        status, _, body = _get(http, url.rstrip("/") + "/v1/info")
    except (OSError, ValueError) as exc:  # ValueError: a URL with spaces or control characters
        problem = network_problem(exc) if isinstance(exc, OSError) else str(exc)
        return Check(
            "backend",
            False,
            f"{url} is unreachable: {problem}",
            "check --backend / S3SIGN_BACKEND and that it runs",
        )
    finally:
        http.close()
    if status != 200:
        return Check(
            "backend",
            False,
            f"{url} answered {status} to /v1/info",
            "is this an s3sign backend (protocol v1)?",
        )
    try:
        info = from_wire(ServerInfo, json.loads(body))
    except ValueError:  # not JSON, or not protocol v1's ServerInfo (WireError)
        return Check(
            "backend", False, f"{url}/v1/info is not protocol v1", "is this an s3sign backend?"
        )
    store = f"; its store {describe(info.store)}" if info.store else ""
    return Check(
        "backend", True, f"{url}: protocol v{info.protocol}, keys {info.key_prefix}/{store}"
    )
