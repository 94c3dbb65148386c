"""``push()``: what ``s3sign push`` does, as a function of the library. It never prints;
progress goes to the ``reporter`` given, and the result is a ``PushReport``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from s3sign.config import PushChecksum, load_settings
from s3sign.errors import ConfigError, CredentialsError, UsageError
from s3sign.keys import check_run_id
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import expand_paths
from s3sign.transfer.oidc import token_or_exchange
from s3sign.transfer.push import Pusher, PushOptions
from s3sign.transfer.report import PushReport, Reporter, SilentReporter


def push(
    run_id: str,
    paths: Sequence[str | Path],
    *,
    backend: str | None = None,
    token: str | None = None,
    base: str | Path = ".",
    checksum: PushChecksum = "auto",
    content_type: str | None = None,
    skip_existing: bool = False,
    reporter: Reporter | None = None,
    env: Mapping[str, str] | None = None,
) -> PushReport:
    """Upload the files ``paths`` name (files, directories, globs; relative to ``base``)
    into run ``run_id`` through the signing backend, straight to S3.

    ``backend`` and ``token`` default to ``S3SIGN_BACKEND`` and ``S3SIGN_TOKEN`` (or the
    config file), as every other setting does (``load_settings``, from ``env``: by default
    the process's). Returns the report (``report.status``: success, partial or error; one
    ``FileOutcome`` per file in ``report.files``); raises ``S3SignError`` when the push as a
    whole cannot go on (no backend, no token, the backend unreachable).
    """
    check_run_id(run_id)
    settings = load_settings({"backend": backend, "token": token}, env=env)
    if not settings.backend:
        raise ConfigError("no backend to ask for upload URLs", hint="pass backend= or set it")
    token = token_or_exchange(settings, os.environ if env is None else env, run_id, "upload")
    if not token:
        raise CredentialsError(
            "no run token", hint="pass token=, set S3SIGN_TOKEN, or S3SIGN_OIDC_TOKEN in CI"
        )
    files = expand_paths([str(Path(base) / path) for path in paths], Path(base))
    if not files.count:
        raise UsageError(f"no files matched {', '.join(map(str, paths)) or '(no paths)'}")
    options = PushOptions.from_settings(
        settings, run_id, checksum=checksum, content_type=content_type, skip_existing=skip_existing
    )
    client = BackendClient(
        settings.backend,
        token,
        read_timeout=options.stall_timeout,
        transport=settings.transport,
    )
    try:
        pusher = Pusher(client, options, reporter or SilentReporter())
        return pusher.push(files.files, count=files.count, total_bytes=files.total_bytes)
    finally:
        client.close()
