"""AWS credentials and region, found the way the AWS tools find them.

Fast path: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and
``AWS_SESSION_TOKEN``, ``AWS_CREDENTIAL_EXPIRATION``) from the environment,
without importing botocore. Otherwise botocore's chain, imported only then:
``--profile``/``AWS_PROFILE``, ``~/.aws`` files, SSO, web identity, container
and instance roles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from s3sign.errors import CredentialsError


@dataclass(frozen=True)
class Credentials:
    """One set of AWS credentials. The secret and token never show in ``repr``."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    source: str = "env"

    @property
    def masked_access_key(self) -> str:
        """``AKIA…MPLE``: enough to tell keys apart, not enough to use one."""
        return mask(self.access_key)


def mask(value: str) -> str:
    """Show the first and last four characters of an identifier, no more."""
    return f"{value[:4]}…{value[-4:]}" if len(value) > 8 else "…"


def resolve_credentials(
    profile: str | None = None, env: Mapping[str, str] | None = None
) -> Credentials:
    """The credentials a command should sign with.

    With no explicit ``profile`` and keys in the environment, those keys (no
    botocore import). Otherwise the botocore chain, for ``profile`` when given.
    Raises ``CredentialsError`` (exit 4) when none are found or they expired.
    """
    env = os.environ if env is None else env
    access_key = env.get("AWS_ACCESS_KEY_ID", "")
    secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
    if profile is None and access_key and secret_key:
        expiry = env.get("AWS_CREDENTIAL_EXPIRATION")
        return Credentials(
            access_key=access_key,
            secret_key=secret_key,
            token=env.get("AWS_SESSION_TOKEN") or None,
            expires_at=_parse_expiry(expiry, "AWS_CREDENTIAL_EXPIRATION") if expiry else None,
            source="env",
        )
    if profile is None and (access_key or secret_key):
        missing = "AWS_SECRET_ACCESS_KEY" if access_key else "AWS_ACCESS_KEY_ID"
        raise CredentialsError(
            f"{missing} is not set, but its partner is",
            hint="set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
        )
    return _from_botocore(profile)


def _parse_expiry(text: str, origin: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CredentialsError(
            f"{origin}: {text!r} is not an ISO 8601 time",
            hint="write it like 2026-01-31T12:00:00Z",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_botocore(profile: str | None) -> Credentials:
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=profile)
        found = session.get_credentials()
        if found is None:
            where = f"profile {profile!r}" if profile else "the environment, ~/.aws or a role"
            raise CredentialsError(f"no AWS credentials found in {where}")
        frozen = found.get_frozen_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise CredentialsError(f"AWS credentials could not be loaded: {exc}") from None
    if not frozen.access_key or not frozen.secret_key:
        raise CredentialsError("the AWS credentials found are incomplete")
    expiry = getattr(found, "_expiry_time", None)
    if isinstance(expiry, datetime) and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return Credentials(
        access_key=frozen.access_key,
        secret_key=frozen.secret_key,
        token=frozen.token or None,
        expires_at=expiry if isinstance(expiry, datetime) else None,
        source=f"botocore:{found.method}",
    )


def aws_region(profile: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The region the AWS tools would use: ``AWS_REGION``, ``AWS_DEFAULT_REGION``, profile.

    Reads ``~/.aws/config`` (or ``AWS_CONFIG_FILE``) with configparser rather
    than botocore, so that finding a region costs no import.
    """
    env = os.environ if env is None else env
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            return env[name]
    import configparser

    profile = profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    home = Path(env.get("HOME", str(Path.home())))
    path = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config").expanduser()
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    section = "default" if profile == "default" else f"profile {profile}"
    region = parser.get(section, "region", fallback=None)
    return region.strip() if region else None


def aws_endpoint_url(env: Mapping[str, str] | None = None) -> str | None:
    """``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, as the AWS SDKs honour them."""
    env = os.environ if env is None else env
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
