"""Run tokens: short-lived HS256 JWTs that let a worker upload into one run, or read
one run or a few.

Minted by ``s3sign token RUN_ID`` (or by your own CI step) with the shared
``S3SIGN_SERVER_SECRET``; checked by the server on every call. A token names its run in
``sub`` (and, for reading, more runs in ``runs``) and what it allows in ``scope``: ``upload``,
``read``, ``seal`` (close the run), or several (``"upload read"``, space-separated as in
OAuth). An upload token may lower the run's quota (``max_bytes``, ``max_files``). A token
minted before scopes other than ``upload`` existed is an upload token, as it was. The
server also checks issuer, audience, expiry and lifetime. Stateless: any replica with the
secret can check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from s3sign.errors import ConfigError
from s3sign.keys import RESERVED_RUN_ID
from s3sign.protocol import ProtocolError
from s3sign.server.quotas import NO_QUOTA, Quota

SECRET_ENV = "S3SIGN_SERVER_SECRET"  # noqa: S105 - the variable's name
SECRETS_ENV = "S3SIGN_SERVER_SECRETS"  # new,old: the first mints, each verifies
MIN_SECRET_BYTES = 32
ISSUER = "s3sign"
AUDIENCE = "s3sign-backend"
UPLOAD, READ, SEAL, LINK, REVOKE = "upload", "read", "seal", "link", "revoke"
SCOPES = (UPLOAD, READ, SEAL)  # what `s3sign token` mints; a link token is minted by mint_link
# A revoke token is the operator's (`s3sign revoke`, with the secret): it names no run but
# the server's own, which no run can take.
ADMIN_SUBJECT = RESERVED_RUN_ID
ALGORITHM = "HS256"
MAX_BYTES, MAX_FILES = "max_bytes", "max_files"  # an upload token's quota for its run


class TokenError(ProtocolError):
    """A token the server refuses: 401 (no valid token) or 403 (not for this run)."""


class Keys:
    """The server's secrets during a rotation: the first mints tokens, links and upload
    handles; every one verifies them. A token names its secret in its ``kid`` header (a
    tag derived from the secret, which says nothing of it); one minted before key ids
    existed is tried against each."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("no secret")
        self.secrets = tuple(secrets)
        self.by_id = {key_id(secret): secret for secret in self.secrets}

    @property
    def minting(self) -> bytes:
        return self.secrets[0]


def key_id(secret: bytes) -> str:
    """The ``kid`` of tokens signed with ``secret``."""
    tag = hmac.new(secret, b"s3sign key id v1", hashlib.sha256).digest()[:6]
    return base64.urlsafe_b64encode(tag).decode()


def server_keys(single: str | None, many: str | None = None) -> Keys:
    """The server's secrets: ``S3SIGN_SERVER_SECRETS`` (``new,old``: the first mints, each
    verifies) or ``S3SIGN_SERVER_SECRET`` (one), never a config file; each checked."""
    if single and many:
        raise ConfigError(
            f"both {SECRET_ENV} and {SECRETS_ENV} are set",
            hint=f"keep one: {SECRETS_ENV}=new,old while rotating, {SECRET_ENV} otherwise",
        )
    if many:
        parts = [part.strip() for part in many.split(",")]
        if not all(parts):
            raise ConfigError(
                f"{SECRETS_ENV} has an empty secret", hint="separate the secrets by single commas"
            )
        return Keys([checked_secret(part.encode("utf-8"), SECRETS_ENV) for part in parts])
    return Keys([server_secret(single)])


def server_secret(value: str | None) -> bytes:
    """The shared signing secret (``Settings.server_secret``: from ``S3SIGN_SERVER_SECRET``,
    never a config file), checked."""
    if not value:
        raise ConfigError(
            f"{SECRET_ENV} is not set",
            hint=f"set it to a random secret of at least {MIN_SECRET_BYTES} bytes, e.g. "
            f"export {SECRET_ENV}=$(openssl rand -base64 48)",
        )
    return checked_secret(value.encode("utf-8"), SECRET_ENV)


def checked_secret(secret: bytes, source: str = "the server secret") -> bytes:
    """``secret`` if it is long enough to sign tokens nobody can forge; else ``ConfigError``
    (exit 3). Every way a secret comes in goes through here."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{source} is {len(secret)} bytes long; it must be at least {MIN_SECRET_BYTES}",
            hint="use a longer random secret, e.g. $(openssl rand -base64 48)",
        )
    return secret


def mint_token(
    run_id: str,
    ttl_seconds: int,
    secret: bytes,
    now: datetime | None = None,
    *,
    scopes: tuple[str, ...] = (UPLOAD,),
    more_runs: tuple[str, ...] = (),
    quota: Quota = NO_QUOTA,
    ci: str | None = None,
) -> tuple[str, datetime]:
    """(token, expiry) that allows ``scopes`` on ``run_id``; a read-only token may also name
    ``more_runs`` (to read an earlier run's artifacts); an upload token may carry a
    ``quota`` that lowers the server's for its run; ``ci``: the CI job it was exchanged for
    (its OIDC subject), named in the audit log. ``ValueError`` for an unknown scope,
    more runs on a token that may upload, or a quota on one that may not."""
    allowed = (REVOKE,) if run_id == ADMIN_SUBJECT else SCOPES
    if not scopes or any(scope not in allowed for scope in scopes):
        raise ValueError(f"scopes are {', '.join(allowed)}")
    if more_runs and UPLOAD in scopes:
        raise ValueError("a token that may upload names one run")
    if quota and UPLOAD not in scopes:
        raise ValueError("a quota limits uploads: the token must allow them")
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + timedelta(seconds=ttl_seconds)
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": run_id,
        "scope": " ".join(scope for scope in (*SCOPES, REVOKE) if scope in scopes),
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    if more_runs:
        claims["runs"] = [run_id, *(run for run in more_runs if run != run_id)]
    if quota.bytes is not None:
        claims[MAX_BYTES] = quota.bytes
    if quota.files is not None:
        claims[MAX_FILES] = quota.files
    if ci is not None:
        claims["ci"] = ci
    return _signed(claims, secret), expires


def _signed(claims: Mapping[str, object], secret: bytes) -> str:
    return jwt.encode(dict(claims), secret, algorithm=ALGORITHM, headers={"kid": key_id(secret)})


def token_quota(claims: Mapping[str, object]) -> Quota:
    """The quota a token's claims set for its run (none by default)."""
    return Quota(_limit(claims, MAX_BYTES), _limit(claims, MAX_FILES))


def _limit(claims: Mapping[str, object], name: str) -> int | None:
    value = claims.get(name)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise TokenError(401, "invalid_token", f"the token's {name} is not a whole number")


def verify_token(
    token: str | None,
    secret: bytes | Keys,
    run_id: str,
    max_ttl: int = 7 * 86400,
    scope: str = UPLOAD,
) -> dict[str, Any]:
    """The claims of a valid, unexpired token that allows ``scope`` on exactly ``run_id``,
    whose lifetime is at most ``max_ttl`` seconds; else ``TokenError``."""
    if not token:
        raise TokenError(401, "missing_token", "send Authorization: Bearer <token>")
    claims = _claims(token, secret, max_ttl, "token_expired", "the token has expired")
    granted = claims.get("scope")
    if not isinstance(granted, str) or scope not in granted.split():
        what = {UPLOAD: "uploads", READ: "reading", SEAL: "sealing the run"}.get(scope, scope)
        what = "revoking tokens" if scope == REVOKE else what
        raise TokenError(403, "wrong_scope", f"the token does not allow {what}")
    runs = claims.get("runs")
    named = runs if scope == READ and isinstance(runs, list) else [claims.get("sub")]
    if run_id not in named:
        raise TokenError(403, "wrong_run", "the token is for another run")
    return claims


def mint_link(
    run_id: str, file_name: str, ttl_seconds: int, secret: bytes, now: datetime | None = None
) -> tuple[str, datetime]:
    """(token, expiry) for a stable link to one file of a run: it reads that file only,
    and may live longer than a pre-signed URL (each visit signs a fresh one)."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + timedelta(seconds=ttl_seconds)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": run_id,
        "scope": LINK,
        "file": file_name,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return _signed(claims, secret), expires


def verify_link(
    token: str, secret: bytes | Keys, run_id: str, file_name: str, max_ttl: int
) -> dict[str, Any]:
    """The claims of a link token for exactly this file of this run; else ``TokenError``."""
    claims = _claims(token, secret, max_ttl, "link_expired", "the link has expired")
    if claims.get("scope") != LINK or claims.get("sub") != run_id:
        raise TokenError(403, "wrong_run", "the link is for another run")
    if claims.get("file") != file_name:
        raise TokenError(403, "wrong_file", "the link is for another file")
    return claims


def _claims(
    token: str, secret: bytes | Keys, max_ttl: int, expired: str, says: str
) -> dict[str, Any]:
    """The claims of a token this server signed, unexpired (else ``expired``, 401), that
    lives at most ``max_ttl`` seconds; else ``TokenError``."""
    keys = secret if isinstance(secret, Keys) else Keys([secret])
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        raise TokenError(401, "invalid_token", "the token is not valid for this server") from None
    if kid is None:  # minted before key ids: any of the secrets
        candidates = keys.secrets
    elif isinstance(kid, str) and kid in keys.by_id:
        candidates = (keys.by_id[kid],)
    else:
        raise TokenError(
            401, "invalid_token", "the token was signed with a secret this server does not have"
        )
    claims = next(filter(None, (_decoded(token, key, expired, says) for key in candidates)), None)
    if claims is None:
        raise TokenError(401, "invalid_token", "the token is not valid for this server")
    lifetime = claims["exp"] - claims["iat"]
    if not isinstance(lifetime, int | float) or lifetime > max_ttl:
        raise TokenError(
            401,
            "token_too_long",
            f"the token's lifetime is over this server's limit of {max_ttl} s; mint a shorter one",
        )
    return claims


def _decoded(token: str, secret: bytes, expired: str, says: str) -> dict[str, Any] | None:
    """The token's claims if ``secret`` signed it (None if it did not); ``TokenError`` if
    it did and the token is not good."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.InvalidSignatureError:
        return None
    except jwt.ExpiredSignatureError:
        raise TokenError(401, expired, f"{says}; mint a new one") from None
    except jwt.InvalidTokenError:
        raise TokenError(401, "invalid_token", "the token is not valid for this server") from None
    return claims
