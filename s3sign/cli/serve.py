"""``s3sign token``, ``s3sign seal``, ``s3sign revoke`` and ``s3sign serve`` (also
``--local``, with an embedded store).

No ``from __future__ import annotations`` here: Typer reads every parameter's annotation at
start-up, and string annotations cost it an ``eval`` each.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from s3sign.cli.console import Console
from s3sign.cli.options import (
    BackendOption,
    EndpointOption,
    ProfileOption,
    ProviderOption,
    Quiet,
    RegionOption,
    Verbose,
    backend_client,
    check_run_id_flag,
    command_state,
    option,
    run_token,
    run_token_for,
)
from s3sign.config import Settings
from s3sign.errors import UsageError
from s3sign.units import format_duration, format_size, iso_utc, parse_size


class TokenOutput(StrEnum):
    token = "token"  # noqa: S105 - an output format, not a password
    env = "env"
    json = "json"


def token(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run the token may upload into or read.")
    ],
    ttl: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Lifetime: 30m, 12h, 7d.  [default: 12h]"),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(metavar="SCOPE", help="upload, read, seal, or a list: upload,read."),
    ] = "upload",
    also: Annotated[
        list[str] | None,
        typer.Option("--run", metavar="RUN_ID", help="With --scope read: another run it may read."),
    ] = None,
    max_bytes: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE",
            help="With upload: the most the run may hold, like 2GiB (lowers max_run_bytes).",
        ),
    ] = None,
    max_files: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            min=0,
            help="With upload: the most files the run may hold (lowers max_run_files).",
        ),
    ] = None,
    output: Annotated[
        TokenOutput, typer.Option("--output", "-o", case_sensitive=False, help="What to print.")
    ] = TokenOutput.token,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Mint a token to upload into a run, or to read or seal runs."""
    import json

    from s3sign.server.quotas import Quota
    from s3sign.server.tokens import SCOPES, mint_token, server_keys

    state = command_state(ctx, verbose, quiet)
    more_runs = tuple(also or ())
    for run in (run_id, *more_runs):
        check_run_id_flag(run)
    scopes = tuple(part.strip().lower() for part in scope.split(","))
    if not all(part in SCOPES for part in scopes):
        raise UsageError(f"--scope {scope!r}", hint="give upload, read, seal, or a list of them")
    if more_runs and "upload" in scopes:
        raise UsageError("--run names more runs to read", hint="add --scope read, or drop --run")
    quota = Quota(_size_flag("--max-bytes", max_bytes), max_files)
    if quota and "upload" not in scopes:
        raise UsageError("--max-bytes and --max-files limit uploads", hint="add --scope upload")
    settings = state.settings({"token_ttl": ttl}, token_ttl="--ttl")  # noqa: S106 - a flag name
    if settings.token_ttl > settings.max_token_ttl:
        raise UsageError(
            f"--ttl {format_duration(settings.token_ttl)} is longer than max_token_ttl "
            f"({format_duration(settings.max_token_ttl)}): the backend would refuse the token",
            hint="mint a shorter one, or raise max_token_ttl (S3SIGN_MAX_TOKEN_TTL) on both sides",
        )
    secret = server_keys(settings.server_secret, settings.server_secrets).minting
    minted, expires_at = mint_token(
        run_id, settings.token_ttl, secret, scopes=scopes, more_runs=more_runs, quota=quota
    )
    runs = ", ".join((run_id, *more_runs))
    limits = [format_size(quota.bytes) if quota.bytes is not None else None]
    limits.append(f"{quota.files} files" if quota.files is not None else None)
    held = f", holding at most {' and '.join(filter(None, limits))}" if quota else ""
    state.console.info(
        f"{' and '.join(scopes)} token for {runs}{held}, expires {iso_utc(expires_at)}"
    )
    if output is TokenOutput.token:
        state.out(minted)
    elif output is TokenOutput.env:
        state.out(f"export S3SIGN_TOKEN={minted}")
    else:
        document: dict[str, object] = {
            "token": minted,
            "runId": run_id,
            "expiresAt": iso_utc(expires_at),
        }
        document |= {"scope": " ".join(scopes), "runs": [run_id, *more_runs]}
        if quota:
            document |= {"maxBytes": quota.bytes, "maxFiles": quota.files}
        state.out(json.dumps(document))


def _size_flag(flag: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}", hint=f"for example {flag} 2GiB") from None


SEAL_TOKEN_TTL = 300  # seconds: a token minted here to seal, used at once


def seal(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to close.")],
    backend: BackendOption = None,
    token: Annotated[
        str | None,
        option(
            "TOKEN",
            "A seal token: 's3sign token RUN --scope seal' (S3SIGN_TOKEN); without one, "
            "minted here where S3SIGN_SERVER_SECRET(S) is set, or traded for the CI job's "
            "OIDC ID token.",
            show_default=False,
        ),
    ] = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Close a run: no more writes to it, whatever token is shown."""
    state = command_state(ctx, verbose, quiet)
    check_run_id_flag(run_id)
    settings = state.settings({"backend": backend, "token": token})
    if settings.token:
        sealing = run_token(settings.token, run_id, scope="seal")
    elif settings.server_secret or settings.server_secrets:
        from s3sign.server.tokens import SEAL, mint_token, server_keys

        secret = server_keys(settings.server_secret, settings.server_secrets).minting
        sealing = mint_token(run_id, SEAL_TOKEN_TTL, secret, scopes=(SEAL,))[0]
    else:  # a CI job's OIDC ID token, where a rule gives it seal; else the error
        sealing = run_token_for(settings, state.environment.env, run_id, scope="seal")
    client = backend_client(settings, sealing)
    try:
        sealed = client.seal(run_id)
    finally:
        client.close()
    state.console.note(
        f"run {run_id} sealed at {sealed.sealed_at}: no more uploads, overwrites or deletes"
    )


def revoke(
    ctx: typer.Context,
    what: Annotated[
        str,
        typer.Argument(
            metavar="TOKEN_OR_JTI",
            help="The token to cut off (- reads it from stdin, out of the process list), or "
            "its id (jti: the audit log names it).",
        ),
    ],
    backend: BackendOption = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Cut off one token on every replica, until it would expire.

    Needs S3SIGN_SERVER_SECRET (or S3SIGN_SERVER_SECRETS) and the backend."""
    from s3sign.server.tokens import ADMIN_SUBJECT, REVOKE, mint_token, server_keys

    state = command_state(ctx, verbose, quiet)
    settings = state.settings({"backend": backend})
    if what == "-":
        what = state.environment.stdin.read(65536).decode("ascii", "replace")
    jti, until = _token_id(what)
    secret = server_keys(settings.server_secret, settings.server_secrets).minting
    operator = mint_token(ADMIN_SUBJECT, SEAL_TOKEN_TTL, secret, scopes=(REVOKE,))[0]
    client = backend_client(settings, operator)
    try:
        revoked = client.revoke(jti, until)
    finally:
        client.close()
    state.console.note(f"token {jti} revoked on every replica until {revoked.revoked_until}")


def _token_id(what: str) -> tuple[str, int | None]:
    """(jti, expiry) of a token (read, not verified: the backend only records the id), or
    (jti, None) of a bare id."""
    what = what.strip()
    if what.count(".") != 2:
        return what, None
    import jwt

    try:
        claims = jwt.decode(what, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        hint = "give the token or its jti"
        raise UsageError("this is not a token s3sign mints", hint=hint) from None
    jti, expires = claims.get("jti"), claims.get("exp")
    if not isinstance(jti, str):
        raise UsageError("the token has no id (jti) to revoke it by", hint="rotate the secret")
    return jti, expires if isinstance(expires, int) else None


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Listen address.  [default: 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Listen port.  [default: 8080]")
    ] = None,
    bucket: Annotated[
        str | None, typer.Option(metavar="BUCKET", help="Bucket the uploads go to.")
    ] = None,
    key_prefix: Annotated[
        str | None,
        typer.Option(metavar="PREFIX", help="Keys are PREFIX/RUN/FILE.  [default: runs]"),
    ] = None,
    endpoint_url: EndpointOption = None,
    provider: ProviderOption = None,
    region: RegionOption = None,
    profile: ProfileOption = None,
    workers: Annotated[
        int | None, typer.Option(metavar="N", help="Worker processes.  [default: 1]")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Also run an embedded S3 (SeaweedFS), kept on disk.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="With --local: where objects and secrets are kept."),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(metavar="text|json", help="The logs' format.  [default: text]"),
    ] = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Run the signing backend that hands workers upload URLs."""
    state = command_state(ctx, verbose, quiet)
    settings = state.settings(
        {
            "host": host,
            "port": port,
            "bucket": bucket,
            "key_prefix": key_prefix,
            "endpoint_url": endpoint_url,
            "provider": provider.value if provider else None,
            "region": region,
            "profile": profile,
            "workers": workers,
            "log_format": log_format,
        }
    )
    with _metrics_folder():  # before prometheus_client is first imported
        _serve(settings, state.console, local, data_dir)


def _serve(settings: Settings, console: Console, local: bool, data_dir: Path | None) -> None:
    import uvicorn

    from s3sign.server.app import create_app
    from s3sign.server.oidc import oidc_rules
    from s3sign.server.signer import UploadSigner
    from s3sign.server.tokens import server_keys

    if local:
        if settings.workers > 1:
            raise UsageError("--local runs one worker", hint="drop --workers with --local")
        _serve_local(settings, data_dir, console)
        return
    if data_dir is not None:
        raise UsageError("--data-dir only applies with --local")
    keys = server_keys(settings.server_secret, settings.server_secrets)
    signer = UploadSigner(settings)  # fails here, before listening, on bad config or credentials
    oidc_rules(settings.oidc, settings.max_token_ttl)  # the same: a bad rule is exit 3 now
    serving = (
        f"serving protocol v1 on http://{settings.host}:{settings.port} "
        f"(bucket {settings.bucket}, keys {settings.key_prefix}/RUN/FILE, "
        f"{settings.workers} worker{'s' if settings.workers > 1 else ''})"
    )
    if settings.log_format == "json":
        from s3sign.server.observe import log_line

        print(log_line(serving), file=sys.stderr, flush=True)
    else:
        console.note(serving)
    common = _uvicorn_options(settings, console)
    _sigterm_exits()
    if settings.workers == 1:
        uvicorn.run(create_app(settings, secret=keys, signer=signer), **common)
        return
    _export_for_workers(settings)
    uvicorn.run(
        "s3sign.server.app:app_from_environment", factory=True, workers=settings.workers, **common
    )


# prometheus_client's variable, read when it is first imported: set before, and named here
# rather than imported from s3sign.server.observe, which imports prometheus_client.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def _metrics_folder() -> Iterator[None]:
    """Where every worker process keeps its metrics (``PROMETHEUS_MULTIPROC_DIR``), so that
    ``/metrics`` sums them: one the operator set, else a fresh folder, removed at the end."""
    import shutil
    import tempfile

    if os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    folder = tempfile.mkdtemp(prefix="s3sign-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        shutil.rmtree(folder, ignore_errors=True)


def _export_for_workers(settings: Settings) -> None:
    """Worker processes rebuild the app from the environment they inherit
    (``app_from_environment``): hand them the same settings, the secret and the network
    variables."""
    from s3sign.config import describe, env_name

    exported = {
        env_name(key): str(value)
        for key, value, source in describe(settings)
        if source in ("flag", "env") and value is not None
    }
    if settings.config_file is not None:
        exported["S3SIGN_CONFIG"] = str(settings.config_file)
    if settings.server_secret:
        exported["S3SIGN_SERVER_SECRET"] = settings.server_secret
    if settings.server_secrets:
        exported["S3SIGN_SERVER_SECRETS"] = settings.server_secrets
    os.environ.update({**settings.network, **exported})


def _sigterm_exits() -> None:
    """Let SIGTERM end the process by ``SystemExit(0)`` once uvicorn has shut down.

    uvicorn shuts down gracefully, restores the previous handler and raises the
    signal again; with this handler that becomes an exception, so ``with``
    blocks (the embedded store) still clean up, and the exit code is 0.
    """
    import signal

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)


def _uvicorn_options(settings: Settings, console: Console) -> dict[str, Any]:
    """uvicorn's settings for ``serve``; this process tuned for serving (see
    ``share_the_interpreter``)."""
    from s3sign.server.app import log_config, share_the_interpreter
    from s3sign.server.limits import uvicorn_limits

    share_the_interpreter()
    return {
        **uvicorn_limits(settings.max_connections),
        "host": settings.host,
        "port": settings.port,
        "log_config": log_config(console.verbosity < 0, settings.log_format == "json"),
        "log_level": "warning" if console.verbosity < 0 else "info",
        "access_log": console.verbosity >= 0,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }


def _serve_local(settings: Settings, data_dir: Path | None, console: Console) -> None:
    """The backend and an embedded S3 together; objects and secrets persist in ``data_dir``.
    The bucket is the one configured (flag, ``S3SIGN_BUCKET``, ``bucket:``), else s3sign."""
    from dataclasses import replace as replace_settings

    import uvicorn

    from s3sign.local.demo import local_settings
    from s3sign.local.seaweed import default_data_dir, persistent_store, server_secret_file
    from s3sign.server.app import create_app
    from s3sign.server.signer import UploadSigner

    directory = data_dir or default_data_dir()
    secret_path = server_secret_file(directory)
    from s3sign.server.tokens import SECRET_ENV, checked_secret

    bucket = settings.bucket or "s3sign"
    if settings.server_secret:
        secret = checked_secret(settings.server_secret.encode(), SECRET_ENV).decode()
    else:
        secret = checked_secret(secret_path.read_text().strip().encode(), str(secret_path)).decode()
    store = persistent_store(directory, bucket)
    console.note(f"starting an embedded S3 (SeaweedFS), data in {directory} ...")
    with store:
        base = local_settings(store)
        settings = replace_settings(
            settings,
            bucket=bucket,
            endpoint_url=base.endpoint_url,
            region=base.region,
            addressing="path",
        )
        signer = UploadSigner(settings, store.presigner(), store.object_store())
        backend = f"http://{settings.host}:{settings.port}"
        console.note(f"S3 at {store.endpoint_url} (bucket {bucket}); backend at {backend}")
        console.note("for workers on this machine:")
        secret_hint = (
            ""
            if settings.server_secret
            else f'  export S3SIGN_SERVER_SECRET="$(cat {secret_path})"\n'
        )
        console.stderr.write(
            f"  export S3SIGN_BACKEND={backend}\n{secret_hint}"
            "  export S3SIGN_TOKEN=$(s3sign token my-run)\n"
            "  s3sign push my-run ./logs\n"
        )
        app = create_app(settings, secret=secret.encode(), signer=signer)
        _sigterm_exits()
        uvicorn.run(app, **_uvicorn_options(settings, console))
