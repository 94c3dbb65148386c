"""Run tokens: short-lived HS256 JWTs that let a worker upload into one run only.

Minted by ``s3sign token RUN_ID`` (or by your own CI step) with the shared
``S3SIGN_SERVER_SECRET``; checked by the server on every call. A token names
its run in ``sub`` and its permission in ``scope``; the server also checks
issuer, audience and expiry. Stateless: any replica with the secret can check.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt

from s3sign.errors import ConfigError
from s3sign.protocol import ProtocolError

SECRET_ENV = "S3SIGN_SERVER_SECRET"  # noqa: S105 - the variable's name
MIN_SECRET_BYTES = 32
ISSUER = "s3sign"
AUDIENCE = "s3sign-backend"
SCOPE = "upload"
ALGORITHM = "HS256"


class TokenError(ProtocolError):
    """A token the server refuses: 401 (no valid token) or 403 (not for this run)."""


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
    run_id: str, ttl_seconds: int, secret: bytes, now: datetime | None = None
) -> tuple[str, datetime]:
    """(token, expiry) for uploads into ``run_id``."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + timedelta(seconds=ttl_seconds)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": run_id,
        "scope": SCOPE,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def verify_token(token: str | None, secret: bytes, run_id: str, max_ttl: int = 7 * 86400) -> None:
    """Accept a valid, unexpired upload token for exactly ``run_id``, whose lifetime is at
    most ``max_ttl`` seconds; else ``TokenError``."""
    if not token:
        raise TokenError(401, "missing_token", "send Authorization: Bearer <token>")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(401, "token_expired", "the token has expired; mint a new one") from None
    except jwt.InvalidTokenError:
        raise TokenError(401, "invalid_token", "the token is not valid for this server") from None
    lifetime = claims["exp"] - claims["iat"]
    if not isinstance(lifetime, int | float) or lifetime > max_ttl:
        raise TokenError(
            401,
            "token_too_long",
            f"the token's lifetime is over this server's limit of {max_ttl} s; mint a shorter one",
        )
    if claims.get("scope") != SCOPE:
        raise TokenError(403, "wrong_scope", "the token does not allow uploads")
    if claims.get("sub") != run_id:
        raise TokenError(403, "wrong_run", "the token is for another run")
