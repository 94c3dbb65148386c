"""The commands that look rather than move: ``explain``, ``config show``, ``doctor`` and
``completion``.

No ``from __future__ import annotations`` here: Typer reads every parameter's annotation at
start-up, and string annotations cost it an ``eval`` each.
"""

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from s3sign.cli.console import printable
from s3sign.cli.options import (
    CliState,
    EndpointOption,
    MethodChoice,
    ProfileOption,
    ProviderOption,
    Quiet,
    RegionOption,
    Verbose,
    command_state,
)
from s3sign.cli.typer_internals import get_completion_script
from s3sign.errors import ExitCode, UsageError


def explain(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Argument(
            metavar="URL", help="A pre-signed URL (quoted), or - to read it from stdin."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    check: Annotated[
        bool,
        typer.Option("--verify", help="Check the signature with local AWS credentials."),
    ] = False,
    method: Annotated[
        MethodChoice | None,
        typer.Option(case_sensitive=False, help="With --verify: the method to check it for."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            metavar="'NAME: VALUE'",
            help="With --verify: a signed header's value; repeatable.",
        ),
    ] = None,
    profile: ProfileOption = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Show what a pre-signed URL allows, and check its signature."""
    from s3sign.signing.explain import explain as read_url
    from s3sign.signing.explain import render as render_explanation
    from s3sign.signing.explain import verify

    state = command_state(ctx, verbose, quiet)
    if url is None or url == "-":
        url = state.environment.stdin.readline().decode("utf-8", "replace")
    if not url.strip():
        raise UsageError("no URL given", hint="s3sign explain 'https://...', or pipe it in")
    explanation = read_url(url)
    now = datetime.now(UTC)
    problem = None
    if check:
        if method is None:
            raise UsageError("--verify needs --method", hint="e.g. --verify --method put")
        if explanation.version != "SigV4":
            raise UsageError("only SigV4 signatures can be checked", hint="sign it again")
        settings = state.settings({"profile": profile})
        from s3sign.credentials import resolve_credentials

        credentials = resolve_credentials(settings.profile)
        values = dict(_parse_header(item) for item in header or ())
        problem = verify(url, method.value, values, credentials)
    if json_output:
        document = explanation.as_dict(now)
        if check:
            document["verified"] = problem is None
            document["problem"] = problem
        state.out(json.dumps(document, ensure_ascii=False))
    else:
        text = render_explanation(explanation, now)
        if check:
            verdict = "matches" if problem is None else f"DOES NOT MATCH: {problem}"
            text += f"verified:    {method.value.upper() if method else ''} {verdict}\n"
        state.out(text, end="")
    if problem is not None:
        raise typer.Exit(ExitCode.SOME_FAILED)


def _parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        hint = "like -H 'Content-Length: 5'"
        raise UsageError(f"--header {text!r} is not NAME: VALUE", hint=hint)
    return name.strip(), value.strip()


config_app = typer.Typer(
    help="Inspect the configuration.", no_args_is_help=True, add_completion=False
)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective configuration and where each value came from (secrets masked)."""
    from s3sign.config import describe, env_name

    state = ctx.ensure_object(CliState)
    settings = state.settings()
    env = state.environment.env
    rows: list[tuple[str, str, str]] = []
    for key, value, source in describe(settings):
        origin: str = {"env": env_name(key), "file": str(settings.config_file)}.get(source, source)
        rows.append((key, "" if value is None else str(value), origin))
    for name in ("S3SIGN_TOKEN", "S3SIGN_SERVER_SECRET", "AWS_SECRET_ACCESS_KEY"):
        if env.get(name):  # secrets: only that they are set, never a character of them
            rows.append((name.lower(), f"(set, {len(env[name])} characters)", name))
    if json_output:
        document = {key: {"value": value, "source": origin} for key, value, origin in rows}
        state.out(json.dumps(document, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    for key, value, origin in rows:
        state.out(f"{key:<{width}}  {value:<{value_width}}  {origin}")


def doctor(
    ctx: typer.Context,
    bucket: Annotated[
        str | None, typer.Option(metavar="BUCKET", help="Also check access to this bucket.")
    ] = None,
    provider: ProviderOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
    profile: ProfileOption = None,
    backend: Annotated[
        str | None, typer.Option(metavar="URL", help="Also check this backend.")
    ] = None,
) -> None:
    """Check credentials, region, clock, bucket and backend."""
    from s3sign.cli.doctor import run_checks

    state = ctx.ensure_object(CliState)
    settings = state.settings(
        {
            "provider": provider.value if provider else None,
            "region": region,
            "endpoint_url": endpoint_url,
            "profile": profile,
            "backend": backend,
            "bucket": bucket,
        }
    )
    checks = run_checks(settings, settings.bucket)
    for check in checks:  # details quote the store and the backend: escaped, one line each
        status = "ok  " if check.ok else "FAIL"
        state.out(f"{status}  {check.name:<12} {printable(check.detail)}")
        if not check.ok and check.hint:
            state.out(f"      {'':<12} hint: {printable(check.hint)}")
    if not all(check.ok for check in checks):
        raise typer.Exit(ExitCode.SOME_FAILED)


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


COMPLETE_VAR = "_S3SIGN_COMPLETE"


def completion(
    ctx: typer.Context,
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print a shell completion script."""
    state = ctx.ensure_object(CliState)
    state.out(
        get_completion_script(prog_name="s3sign", complete_var=COMPLETE_VAR, shell=shell.value)
    )
