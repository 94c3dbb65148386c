"""The ``s3sign`` command line: parse, call the core, render.

This is the one place where errors become exit codes and text on stderr.

No ``from __future__ import annotations`` here, unlike the rest of the
package: Typer reads every parameter's annotation at start-up, and string
annotations cost it an ``eval`` each (about 15 ms of every ``sign`` run).
"""

import gc
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from typer import _click as click
from typer.core import TyperGroup

from s3sign import __version__
from s3sign.cli.console import Console
from s3sign.config import Checksum, PushChecksum, load_settings
from s3sign.errors import (
    ConfigError,
    CredentialsError,
    ExitCode,
    S3SignError,
    Terminated,
    UsageError,
    stop_reason,
)
from s3sign.signing.formats import Output, iso_utc, render
from s3sign.signing.presign import (
    Method,
    Presigner,
    SignRequest,
    cap_expiry,
    check_content_type,
    check_request,
    normalize_digest,
    resolve_endpoint_url,
)
from s3sign.units import format_duration, parse_size

if TYPE_CHECKING:  # imported where used: `sign` must start without them
    from s3sign.transfer.files import LocalFile
    from s3sign.transfer.push import PushOptions
    from s3sign.transfer.report import Reporter


@dataclass
class CliState:
    """What the root options decided, shared with every command through ``ctx.obj``."""

    console: Console
    config: Path | None = None


class S3SignGroup(TyperGroup):
    """Turns every failure into ``s3sign: error: ...``, a hint, and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, typer.Exit, typer.Abort):
            raise
        except S3SignError as exc:
            _fail(ctx, exc.message, exc.hint, exc.exit_code, exc)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM during a push
            _console(ctx).error(stop_reason(exc))
            terminated = isinstance(exc, Terminated)
            raise typer.Exit(ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED) from None
        except BrokenPipeError:  # `s3sign ... | head`: the reader left; stop quietly, like cat
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(ExitCode.BROKEN_PIPE) from None
        except Exception as exc:  # a bug: say so, and how to report it
            _fail(
                ctx,
                f"internal error: {type(exc).__name__}: {exc}",
                "this is a bug in s3sign; rerun with -vv and report the traceback",
                ExitCode.INTERNAL,
                exc,
            )

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args, prog_name or "s3sign", complete_var, False, windows_expand_args, **extra
            )
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = ExitCode.USAGE
        except click.ClickException as exc:
            failed_ctx = getattr(exc, "ctx", None)
            command = failed_ctx.command_path if failed_ctx is not None else "s3sign"
            Console().error(exc.format_message(), f"see '{command} --help'")
            code = exc.exit_code
        except typer.Abort:
            code = ExitCode.INTERRUPTED
        code = code if isinstance(code, int) else ExitCode.OK
        if standalone_mode:
            sys.exit(code)
        return code


def _console(ctx: click.Context) -> Console:
    state = ctx.find_object(CliState)
    return state.console if state is not None else Console()


def _fail(ctx: click.Context, message: str, hint: str, code: int, exc: BaseException) -> NoReturn:
    console = _console(ctx)
    if not hint and code == ExitCode.USAGE:
        hint = f"see '{ctx.command_path} {ctx.invoked_subcommand or ''} --help'".replace("  ", " ")
    if console.verbosity >= 2:
        import traceback

        console.stderr.write("".join(traceback.format_exception(exc)))
    console.error(message, hint)
    raise typer.Exit(code) from None


app = typer.Typer(
    cls=S3SignGroup,
    name="s3sign",
    help="Move build artifacts straight from workers to S3 with pre-signed URLs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Verbose = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        show_default=False,
        help="More detail on stderr (-vv: debug).",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"s3sign {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="PATH",
            help="YAML config file (default: $S3SIGN_CONFIG, ./s3sign.yaml, "
            "~/.config/s3sign/config.yaml).",
            show_default=False,
        ),
    ] = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Move build artifacts straight from workers to S3 with pre-signed URLs."""
    ctx.obj = CliState(console=Console(verbosity=-1 if quiet else verbose), config=config)


def _state(ctx: typer.Context, verbose: int, quiet: bool) -> CliState:
    """The root state, with a command's own -v/-q (given after the command name) applied."""
    state = ctx.ensure_object(CliState)
    if quiet:
        state.console.verbosity = -1
    elif verbose:
        state.console.verbosity = max(state.console.verbosity, verbose)
    return state


class MethodChoice(StrEnum):
    put = "put"
    get = "get"
    head = "head"
    delete = "delete"


class OutputChoice(StrEnum):
    url = "url"
    json = "json"
    curl = "curl"
    env = "env"
    html = "html"  # --post only


class AddressingChoice(StrEnum):
    auto = "auto"
    virtual = "virtual"
    path = "path"


class ChecksumChoice(StrEnum):
    sha256 = "sha256"
    md5 = "md5"
    none = "none"


class PushChecksumChoice(StrEnum):
    auto = "auto"
    sha256 = "sha256"
    md5 = "md5"
    none = "none"


class ProviderChoice(StrEnum):
    aws = "aws"
    r2 = "r2"
    gcs = "gcs"
    b2 = "b2"
    minio = "minio"
    seaweedfs = "seaweedfs"
    custom = "custom"


ProviderOption = Annotated[
    ProviderChoice | None,
    typer.Option(
        case_sensitive=False,
        help="S3-compatible service preset: endpoint, region, addressing.  [default: aws]",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None, typer.Option(metavar="REGION", help="AWS region, e.g. eu-west-1.")
]
EndpointOption = Annotated[
    str | None,
    typer.Option(metavar="URL", help="S3-compatible endpoint, e.g. http://127.0.0.1:8333."),
]
ProfileOption = Annotated[str | None, typer.Option(metavar="NAME", help="AWS profile from ~/.aws.")]


@app.command()
def sign(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(metavar="BUCKET", help="Bucket, or s3://bucket/key.", show_default=False),
    ] = None,
    key: Annotated[
        str | None, typer.Argument(metavar="KEY", help="Object key.", show_default=False)
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Sign each JSON line of FILE (- for stdin); print one JSON line each.",
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(metavar="BYTES", help="Exact body size for PUT: bytes, or like 5MiB."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Take size, content type and checksum from this file."),
    ] = None,
    method: Annotated[
        MethodChoice, typer.Option(case_sensitive=False, help="HTTP method the URL allows.")
    ] = MethodChoice.put,
    content_type: Annotated[
        str | None, typer.Option(metavar="TYPE", help="Content-Type the PUT must send (signed).")
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(metavar="DIGEST", help="SHA-256 of the body, base64 or hex (signed)."),
    ] = None,
    md5: Annotated[
        str | None, typer.Option(metavar="DIGEST", help="MD5 of the body, base64 or hex (signed).")
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME=VALUE", help="x-amz-meta-NAME header (signed); repeatable."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Lifetime: 90s, 15m, 12h, 7d.  [default: 15m]"),
    ] = None,
    provider: ProviderOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointOption = None,
    addressing: Annotated[
        AddressingChoice | None,
        typer.Option(
            case_sensitive=False,
            help="virtual-host or path style.  [default: auto]",
            show_default=False,
        ),
    ] = None,
    profile: ProfileOption = None,
    checksum: Annotated[
        ChecksumChoice | None,
        typer.Option(
            case_sensitive=False,
            help="Checksum computed for --file.  [default: the provider's, sha256 on AWS]",
            show_default=False,
        ),
    ] = None,
    strict_expiry: Annotated[
        bool,
        typer.Option(
            "--strict-expiry", help="Fail rather than cut the expiry to temporary credentials'."
        ),
    ] = False,
    output: Annotated[
        OutputChoice, typer.Option("--output", "-o", case_sensitive=False, help="What to print.")
    ] = OutputChoice.url,
    now: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="Sign as of this ISO 8601 time (reproducible output)."),
    ] = None,
    post: Annotated[
        bool,
        typer.Option("--post", help="A POST policy for browser-style uploads (form fields)."),
    ] = False,
    max_size: Annotated[
        str | None,
        typer.Option(metavar="BYTES", help="With --post: the largest body allowed (required)."),
    ] = None,
    min_size: Annotated[
        str | None,
        typer.Option(metavar="BYTES", help="With --post: the smallest body allowed.  [default: 0]"),
    ] = None,
    content_type_prefix: Annotated[
        str | None,
        typer.Option(metavar="PREFIX", help="With --post: allow any type starting so (image/)."),
    ] = None,
    multipart: Annotated[
        bool,
        typer.Option("--multipart", help="Start a multipart upload: its id and a URL per part."),
    ] = False,
    part_size: Annotated[
        str | None,
        typer.Option(metavar="BYTES", help="With --multipart: bytes per part.  [default: 16MiB]"),
    ] = None,
    complete: Annotated[
        str | None,
        typer.Option(metavar="UPLOAD_ID", help="Complete this multipart upload (with --etags)."),
    ] = None,
    etags: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="With --complete: the parts' ETags (JSON or lines)."),
    ] = None,
    abort: Annotated[
        str | None,
        typer.Option(metavar="UPLOAD_ID", help="Abort this multipart upload, dropping its parts."),
    ] = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Pre-sign one object's URL with local AWS credentials."""
    state = _state(ctx, verbose, quiet)
    console = state.console
    settings = load_settings(
        {
            "provider": provider.value if provider else None,
            "region": region,
            "endpoint_url": endpoint_url,
            "addressing": addressing.value if addressing else None,
            "profile": profile,
            "expires": expires,
            "checksum": checksum.value if checksum else None,
            "strict_expiry": True if strict_expiry else None,
        },
        config_path=state.config,
    )
    body_flags = {"--file": file, "--sha256": sha256, "--md5": md5, "--meta": meta}
    if batch is not None:
        _refuse_with(
            "--batch",
            {"BUCKET": target, "--size": size, **body_flags},
            hint="give them per line: bucket, key, size, sha256, md5, meta",
        )
        _sign_batch(
            batch,
            settings,
            console,
            method=cast(Method, method.value.upper()),
            content_type=content_type,
            output=output,
            now=_parse_now(now) if now else None,
        )
        return
    if target is None:
        raise UsageError("missing BUCKET", hint="s3sign sign BUCKET KEY --size N, or --batch FILE")
    bucket, object_key = split_target(target, key)
    other_method = method is not MethodChoice.put
    if multipart or complete is not None or abort is not None:
        _refuse_with("multipart uploads", {"--post": post, **body_flags, "--method": other_method})
        _sign_multipart(
            bucket,
            object_key,
            settings,
            start=multipart,
            size=_parse_size_flag(size),
            part_size=_parse_size_flag(part_size) or settings.part_size,
            content_type=content_type,
            complete=complete,
            etags=etags,
            abort=abort,
            now=_parse_now(now) if now else None,
        )
        return
    if part_size is not None or etags is not None:
        raise UsageError(
            "--part-size and --etags belong to --multipart and --complete",
            hint="add --multipart (or --complete UPLOAD_ID), or drop them",
        )
    post_only = {"--max-size": max_size, "--min-size": min_size}
    post_only["--content-type-prefix"] = content_type_prefix
    if post:
        _refuse_with(
            "--post",
            {"--size": size, **body_flags, "--method": other_method},
            hint="a POST policy limits the size with --max-size/--min-size",
        )
        _sign_post(
            bucket,
            object_key,
            settings,
            console,
            max_size=max_size,
            min_size=min_size,
            content_type=content_type,
            content_type_prefix=content_type_prefix,
            output=output,
            now=_parse_now(now) if now else None,
        )
        return
    given = [name for name, value in post_only.items() if value is not None]
    if given:
        message = f"{', '.join(given)} only apply to --post"
        raise UsageError(message, hint="add --post, or drop them")
    if output is OutputChoice.html:
        raise UsageError("-o html is for --post forms", hint="use -o url, json, curl or env")
    request = SignRequest(
        bucket=bucket,
        key=object_key,
        method=cast(Method, method.value.upper()),
        size=_parse_size_flag(size),
        content_type=content_type,
        sha256=normalize_digest(sha256, 32) if sha256 is not None else None,
        md5=normalize_digest(md5, 16) if md5 is not None else None,
        meta=tuple(_parse_meta(item) for item in meta or ()),
        expires=settings.expires,
    )
    if file is not None:
        request = _with_file(request, file, settings.checksum)
    check_request(request, strict_bucket=resolve_endpoint_url(settings) is None)

    signing_time = _parse_now(now)
    presigner = Presigner.from_settings(settings)
    credentials = presigner.credentials
    expires_in, warning = cap_expiry(
        request.expires, credentials, signing_time, strict=settings.strict_expiry
    )
    if warning:
        console.warning(warning)
    console.info(f"credentials: {credentials.source} ({credentials.masked_access_key})")
    console.info(f"region: {presigner.region}; endpoint: {presigner.endpoint_url or 'AWS'}")
    signed = presigner.sign(request._replace(expires=expires_in), signing_time)
    console.info(
        f"signed {signed.method} s3://{bucket}/{object_key}, "
        f"expires in {format_duration(expires_in)}"
    )
    body_path = str(file) if file is not None else None
    typer.echo(render(signed, cast(Output, output.value), body_path=body_path), nl=False)


def _refuse_with(mode: str, flags: dict[str, object], hint: str | None = None) -> None:
    """A usage error naming the flags given that do not go with ``mode``."""
    given = [name for name, value in flags.items() if value]
    if given:
        raise UsageError(f"{', '.join(given)} cannot be used with {mode}", hint=hint)


def _sign_multipart(
    bucket: str,
    key: str,
    settings: Any,
    *,
    start: bool,
    size: int | None,
    part_size: int,
    content_type: str | None,
    complete: str | None,
    etags: Path | None,
    abort: str | None,
    now: datetime | None,
) -> None:
    """``--multipart``, ``--complete ID --etags FILE`` or ``--abort ID``: one of them."""
    from s3sign.signing import multipart

    if sum((start, complete is not None, abort is not None)) > 1:
        raise UsageError("give one of --multipart, --complete and --abort")
    presigner = Presigner.from_settings(settings)
    if start:
        if size is None:
            raise UsageError("--multipart needs --size", hint="the whole object's size in bytes")
        document = multipart.start(
            presigner,
            bucket,
            key,
            size=size,
            part_size=part_size,
            expires=settings.expires,
            content_type=content_type,
            now=now,
        )
        typer.echo(json.dumps(document, ensure_ascii=False))
        return
    if size is not None or content_type is not None:
        raise UsageError("--size and --content-type belong to --multipart")
    if abort is not None:
        multipart.abort(presigner, bucket, key, abort)
        outcome = {"bucket": bucket, "key": key, "uploadId": abort, "status": "aborted"}
        typer.echo(json.dumps(outcome))
        return
    if etags is None:
        raise UsageError("--complete needs --etags FILE", hint="the ETag S3 returned for each part")
    try:
        text = etags.read_text()
    except OSError as exc:
        raise UsageError(f"--etags {etags}: {exc.strerror}") from None
    etag = multipart.complete(presigner, bucket, key, cast(str, complete), text)
    typer.echo(json.dumps({"bucket": bucket, "key": key, "etag": etag, "status": "complete"}))


def _sign_post(
    bucket: str,
    key: str,
    settings: Any,
    console: Console,
    *,
    max_size: str | None,
    min_size: str | None,
    content_type: str | None,
    content_type_prefix: str | None,
    output: OutputChoice,
    now: datetime | None,
) -> None:
    """``sign --post``: a signed POST policy, as JSON, a curl command or an HTML form."""
    from s3sign.signing.post import PostPolicy, render_post, sign_post

    if max_size is None:
        raise UsageError(
            "--post needs --max-size",
            hint="without a limit anyone with the form can fill the bucket: --max-size 10MiB",
        )
    policy = PostPolicy(
        bucket=bucket,
        key=key,
        max_size=_parse_size_flag(max_size) or 0,
        min_size=_parse_size_flag(min_size) or 0,
        content_type=content_type,
        content_type_prefix=content_type_prefix,
        expires=settings.expires,
    )
    presigner = Presigner.from_settings(settings)
    moment = now or datetime.now(UTC)
    expires, warning = cap_expiry(
        policy.expires, presigner.credentials, moment, strict=settings.strict_expiry
    )
    if warning:
        console.warning(warning)
    form = sign_post(presigner, replace(policy, expires=expires), moment)
    lifetime = format_duration(expires)
    console.info(f"signed a POST policy for s3://{bucket}/{key}, expires in {lifetime}")
    shown = OutputChoice.json if output is OutputChoice.url else output
    typer.echo(render_post(form, shown.value), nl=False)


def _sign_batch(
    path: str,
    settings: Any,
    console: Console,
    *,
    method: Method,
    content_type: str | None,
    output: OutputChoice,
    now: datetime | None,
) -> None:
    """``sign --batch``: stream JSON lines through one presigner; exit 1 if a line failed."""
    from s3sign.signing.batch import Defaults, sign_source

    if output not in (OutputChoice.url, OutputChoice.json):
        raise UsageError(f"--batch prints JSON lines, not {output.value}", hint="drop --output")
    if content_type is not None:
        check_content_type(content_type, "--content-type")
    presigner = Presigner.from_settings(settings)  # credentials resolved once, for every line
    defaults = Defaults(method, content_type, settings.expires)
    try:
        source = cast(
            "io.BufferedReader",
            sys.stdin.buffer if path == "-" else open(path, "rb"),  # noqa: SIM115
        )
    except OSError as exc:
        message = f"--batch {path}: {exc.strerror}"
        raise UsageError(message, hint="give a readable file, or - for stdin") from None
    stdout = sys.stdout
    try:
        result = sign_source(
            source,
            stdout.write,
            stdout.flush,
            presigner,
            defaults,
            strict_expiry=settings.strict_expiry,
            now=now,
        )
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    for warning in result.warnings:
        console.warning(warning)
    console.info(f"signed {result.signed:,} requests, {result.failed:,} failed")
    if result.failed:
        raise typer.Exit(ExitCode.SOME_FAILED)


@app.command()
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

    state = _state(ctx, verbose, quiet)
    if url is None or url == "-":
        url = sys.stdin.readline()
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
        settings = load_settings({"profile": profile}, config_path=state.config)
        from s3sign.credentials import resolve_credentials

        credentials = resolve_credentials(settings.profile)
        values = dict(_parse_header(item) for item in header or ())
        problem = verify(url, method.value, values, credentials)
    if json_output:
        document = explanation.as_dict(now)
        if check:
            document["verified"] = problem is None
            document["problem"] = problem
        typer.echo(json.dumps(document, ensure_ascii=False))
    else:
        text = render_explanation(explanation, now)
        if check:
            verdict = "matches" if problem is None else f"DOES NOT MATCH: {problem}"
            text += f"verified:    {method.value.upper() if method else ''} {verdict}\n"
        typer.echo(text, nl=False)
    if problem is not None:
        raise typer.Exit(ExitCode.SOME_FAILED)


def _parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        hint = "like -H 'Content-Length: 5'"
        raise UsageError(f"--header {text!r} is not NAME: VALUE", hint=hint)
    return name.strip(), value.strip()


class TokenOutput(StrEnum):
    token = "token"  # noqa: S105 - an output format, not a password
    env = "env"
    json = "json"


@app.command()
def token(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run the token may upload into.")
    ],
    ttl: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Lifetime: 30m, 12h, 7d.  [default: 12h]"),
    ] = None,
    output: Annotated[
        TokenOutput, typer.Option("--output", "-o", case_sensitive=False, help="What to print.")
    ] = TokenOutput.token,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Mint a token that lets a worker upload into one run."""
    import json

    from s3sign.server.tokens import mint_token, server_secret

    state = _state(ctx, verbose, quiet)
    _check_run_id(run_id)
    settings = load_settings(
        {"token_ttl": ttl}, config_path=state.config, flag_names={"token_ttl": "--ttl"}
    )
    if settings.token_ttl > settings.max_token_ttl:
        raise UsageError(
            f"--ttl {format_duration(settings.token_ttl)} is longer than max_token_ttl "
            f"({format_duration(settings.max_token_ttl)}): the backend would refuse the token",
            hint="mint a shorter one, or raise max_token_ttl (S3SIGN_MAX_TOKEN_TTL) on both sides",
        )
    minted, expires_at = mint_token(run_id, settings.token_ttl, server_secret())
    state.console.info(f"token for run {run_id}, expires {iso_utc(expires_at)}")
    if output is TokenOutput.token:
        typer.echo(minted)
    elif output is TokenOutput.env:
        typer.echo(f"export S3SIGN_TOKEN={minted}")
    else:
        document = {"token": minted, "runId": run_id, "expiresAt": iso_utc(expires_at)}
        typer.echo(json.dumps(document))


@app.command()
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
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Run the signing backend that hands workers upload URLs."""
    import os

    import uvicorn

    from s3sign.config import describe, env_name
    from s3sign.server.app import create_app
    from s3sign.server.signer import UploadSigner
    from s3sign.server.tokens import server_secret

    state = _state(ctx, verbose, quiet)
    settings = load_settings(
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
        },
        config_path=state.config,
    )
    if local:
        if settings.workers > 1:
            raise UsageError("--local runs one worker", hint="drop --workers with --local")
        _serve_local(settings, data_dir, bucket or "s3sign", state.console)
        return
    if data_dir is not None:
        raise UsageError("--data-dir only applies with --local")
    secret = server_secret()
    signer = UploadSigner(settings)  # fails here, before listening, on bad config or credentials
    state.console.note(
        f"serving protocol v1 on http://{settings.host}:{settings.port} "
        f"(bucket {settings.bucket}, keys {settings.key_prefix}/RUN/FILE, "
        f"{settings.workers} worker{'s' if settings.workers > 1 else ''})"
    )
    common = _uvicorn_options(settings, state.console)
    _sigterm_exits()
    if settings.workers == 1:
        uvicorn.run(create_app(settings, secret=secret, signer=signer), **common)
        return
    # Worker processes rebuild the app from the environment: hand them the same settings.
    for key, value, source in describe(settings):
        if source in ("flag", "env") and value is not None:
            os.environ[env_name(key)] = str(value)
    if settings.config_file is not None:
        os.environ["S3SIGN_CONFIG"] = str(settings.config_file)
    uvicorn.run(
        "s3sign.server.app:app_from_environment", factory=True, workers=settings.workers, **common
    )


class NoFilesPolicy(StrEnum):
    error = "error"
    warn = "warn"
    ignore = "ignore"


@app.command()
def push(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to upload into.")],
    paths: Annotated[
        list[str] | None,
        typer.Argument(metavar="PATHS...", help="Files, directories, globs.", show_default=False),
    ] = None,
    backend: Annotated[
        str | None, typer.Option(metavar="URL", help="The signing backend (S3SIGN_BACKEND).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            help="Run token from 's3sign token' (S3SIGN_TOKEN).",
            show_default=False,
        ),
    ] = None,
    base: Annotated[
        Path, typer.Option(metavar="DIR", help="Names are relative to this directory.")
    ] = Path("."),
    concurrency: Annotated[
        int | None, typer.Option(metavar="N", help="Uploads in flight.  [default: 8]")
    ] = None,
    checksum: Annotated[
        PushChecksumChoice | None,
        typer.Option(
            case_sensitive=False,
            help="Checksum bound into each upload (auto: the strongest the store enforces, "
            "as the backend found out).  [default: auto]",
            show_default=False,
        ),
    ] = None,
    content_type: Annotated[
        str | None, typer.Option(metavar="TYPE", help="Content type for every file (else guessed).")
    ] = None,
    if_no_files_found: Annotated[
        NoFilesPolicy, typer.Option(case_sensitive=False, help="When no path matches a file.")
    ] = NoFilesPolicy.error,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Skip files already stored, same size and hash.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be uploaded; sign nothing.")
    ] = False,
    json_report: Annotated[
        bool, typer.Option("--json", help="Print the JSON report on stdout.")
    ] = False,
    manifest: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Also write the JSON report to FILE.")
    ] = None,
    literal: Annotated[
        bool, typer.Option("--literal", help="Take paths as written: no glob expansion.")
    ] = False,
    files_from: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Also the paths in FILE, one per line, as written ('-': stdin).",
            show_default=False,
        ),
    ] = None,
    include_hidden: Annotated[
        bool,
        typer.Option(
            "--include-hidden", help="Also files and folders named .*, found by a walk or glob."
        ),
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option("--follow-symlinks", help="Also symlinks to files outside --base."),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PATTERN",
            help="Leave out what matches, as .gitignore does (repeatable).",
            show_default=False,
        ),
    ] = None,
    exclude_from: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Also the patterns in FILE (a .gitignore)."),
    ] = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Upload files into a run, straight to S3."""
    from s3sign.http.transport import Transport
    from s3sign.transfer.push import PushOptions

    state = _state(ctx, verbose, quiet)
    _check_run_id(run_id)
    settings = load_settings(
        {
            "backend": backend,
            "concurrency": concurrency,
            "checksum": checksum.value if checksum and checksum != "auto" else None,
        },
        config_path=state.config,
    )
    # The flag, else S3SIGN_CHECKSUM or the config file, else what the store enforces.
    push_checksum: PushChecksum = "auto"
    if checksum is not None:
        push_checksum = checksum.value
    elif settings.sources.get("checksum") in ("env", "file"):
        push_checksum = settings.checksum
    if content_type is not None:
        from s3sign.signing.presign import check_content_type

        check_content_type(content_type, "--content-type")
    listed = _paths_from(files_from) if files_from is not None else []
    if not paths and not listed and files_from is None:
        raise UsageError(
            "no paths to push",
            hint="name files, directories or globs after RUN_ID, or pass --files-from FILE",
        )
    patterns = [*(exclude or []), *_patterns_from(exclude_from)]
    found = _Found(paths or [], listed, base, literal, include_hidden, follow_symlinks, patterns)
    files = _files_to_push(found, if_no_files_found, state.console)
    if dry_run:
        _dry_run(run_id, files, settings.backend, state.console)
        return
    if not files:  # allowed by --if-no-files-found warn|ignore: no backend call at all
        if json_report:
            import json

            from s3sign.transfer.report import PushReport

            typer.echo(json.dumps(PushReport(run_id).wire()))
        return
    options = PushOptions(
        run_id=run_id,
        concurrency=settings.concurrency,
        checksum=push_checksum,
        content_type=content_type,
        skip_existing=skip_existing,
        stall_timeout=settings.stall_timeout,
        transport=Transport.from_environ(),
        hash_multipart=json_report or manifest is not None or skip_existing,
    )
    failed = _run_push(
        _backend_url(settings.backend),
        _run_token(token, run_id),
        options,
        files,
        state.console,
        json_report=json_report,
        manifest=manifest,
    )
    if failed:
        raise typer.Exit(ExitCode.SOME_FAILED)


@app.command()
def demo(ctx: typer.Context, verbose: Verbose = 0, quiet: Quiet = False) -> None:
    """See the whole round trip work on this machine."""
    import tempfile

    from s3sign.cli.console import summary
    from s3sign.local.demo import run_demo
    from s3sign.units import format_size

    console = _state(ctx, verbose, quiet).console
    with _sigterm_interrupts(), tempfile.TemporaryDirectory(prefix="s3sign-demo-") as workdir:
        report = run_demo(Path(workdir), _push_reporter(console, False, 8), console.note)
    summary(console, report.push)
    for name, size, same in report.verified:
        mark = "identical" if same else "DIFFERENT"
        console.note(f"  {mark}  {format_size(size):>8}  {name}")
    uploaded = report.push.bytes("uploaded")
    console.note(
        f"the backend received {report.backend_body_bytes:,} bytes of JSON requests and "
        f"none of the {uploaded:,} bytes of artifacts: they went straight to S3"
    )
    if not report.ok:
        raise typer.Exit(ExitCode.SOME_FAILED)
    console.note(
        "all objects verified. Next: 's3sign serve --local' to keep a local stack running, "
        "see the README's quick start"
    )


def _push_reporter(console: Console, silent: bool, concurrency: int) -> "Reporter":
    """A live display on a terminal, plain lines elsewhere, nothing when ``silent``."""
    import os

    from s3sign.cli.console import LiveReporter, PlainReporter
    from s3sign.transfer.report import SilentReporter

    if silent or console.verbosity < 0:
        return SilentReporter()
    if console.stderr.isatty() and os.environ.get("TERM") != "dumb":
        return LiveReporter(console, concurrency)
    return PlainReporter(console)


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


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a cancelled CI job, a stopped container) ends a push as Ctrl-C does: open
    multipart uploads are aborted and the report still written; then exit 143."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise Terminated

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can take signals
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _uvicorn_options(settings: Any, console: Console) -> dict[str, Any]:
    """uvicorn's settings for ``serve``; this process tuned for serving (see
    ``share_the_interpreter``)."""
    from s3sign.server.app import log_config, share_the_interpreter
    from s3sign.server.limits import uvicorn_limits

    share_the_interpreter()
    return {
        **uvicorn_limits(settings.max_connections),
        "host": settings.host,
        "port": settings.port,
        "log_config": log_config(quiet=console.verbosity < 0),
        "log_level": "warning" if console.verbosity < 0 else "info",
        "access_log": console.verbosity >= 0,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }


def _serve_local(settings: Any, data_dir: Path | None, bucket: str, console: Console) -> None:
    """The backend and an embedded S3 together; objects and secrets persist in ``data_dir``."""
    import os
    from dataclasses import replace as replace_settings

    import uvicorn

    from s3sign.local.demo import local_settings
    from s3sign.local.seaweed import default_data_dir, persistent_store, server_secret_file
    from s3sign.server.app import create_app
    from s3sign.server.signer import UploadSigner

    directory = data_dir or default_data_dir()
    secret_path = server_secret_file(directory)
    from s3sign.server.tokens import SECRET_ENV, checked_secret

    if os.environ.get(SECRET_ENV):
        secret = checked_secret(os.environ[SECRET_ENV].encode(), SECRET_ENV).decode()
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
            if os.environ.get("S3SIGN_SERVER_SECRET")
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


config_app = typer.Typer(
    help="Inspect the configuration.", no_args_is_help=True, add_completion=False
)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective configuration and where each value came from (secrets masked)."""
    import json
    import os

    from s3sign.config import describe, env_name

    state = ctx.ensure_object(CliState)
    settings = load_settings(config_path=state.config)
    rows: list[tuple[str, str, str]] = []
    for key, value, source in describe(settings):
        origin: str = {"env": env_name(key), "file": str(settings.config_file)}.get(source, source)
        rows.append((key, "" if value is None else str(value), origin))
    for name in ("S3SIGN_TOKEN", "S3SIGN_SERVER_SECRET", "AWS_SECRET_ACCESS_KEY"):
        if os.environ.get(name):  # secrets: only that they are set, never a character of them
            rows.append((name.lower(), f"(set, {len(os.environ[name])} characters)", name))
    if json_output:
        document = {key: {"value": value, "source": origin} for key, value, origin in rows}
        typer.echo(json.dumps(document, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    for key, value, origin in rows:
        typer.echo(f"{key:<{width}}  {value:<{value_width}}  {origin}")


@app.command()
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
    from s3sign.cli.console import printable
    from s3sign.cli.doctor import run_checks

    state = ctx.ensure_object(CliState)
    settings = load_settings(
        {
            "provider": provider.value if provider else None,
            "region": region,
            "endpoint_url": endpoint_url,
            "profile": profile,
            "backend": backend,
            "bucket": bucket,
        },
        config_path=state.config,
    )
    checks = run_checks(settings, settings.bucket)
    for check in checks:  # details quote the store and the backend: escaped, one line each
        status = "ok  " if check.ok else "FAIL"
        typer.echo(f"{status}  {check.name:<12} {printable(check.detail)}")
        if not check.ok and check.hint:
            typer.echo(f"      {'':<12} hint: {printable(check.hint)}")
    if not all(check.ok for check in checks):
        raise typer.Exit(ExitCode.SOME_FAILED)


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


COMPLETE_VAR = "_S3SIGN_COMPLETE"


@app.command()
def completion(
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print a shell completion script."""
    from typer._completion_shared import get_completion_script

    typer.echo(
        get_completion_script(prog_name="s3sign", complete_var=COMPLETE_VAR, shell=shell.value)
    )


def _dry_run(run_id: str, files: "list[LocalFile]", backend: str | None, console: Console) -> None:
    """Each file's size and the key it would get (or why the backend would refuse it)."""
    from s3sign.cli.console import printable
    from s3sign.keys import PolicyError, object_key
    from s3sign.transfer.backend import BackendClient

    prefix, where = "runs", "the default prefix: no backend is configured"
    if backend:
        try:
            prefix, where = BackendClient(backend, "", attempts=1).info().key_prefix, backend
        except S3SignError:
            where = f"the default prefix: {backend} did not answer"
    for local in files:
        try:
            key = object_key(prefix, run_id, local.name)
        except PolicyError as exc:
            key = f"{local.name}  (refused: {exc.message})"
        typer.echo(f"{local.size:>14,}  {printable(key)}")  # a name is one line, as it is
    total = sum(local.size for local in files)
    console.note(
        f"{len(files)} files, {total:,} bytes, keys under {prefix}/{run_id}/ ({where}): "
        "nothing was signed"
    )


def _check_run_id(run_id: str) -> None:
    from s3sign.keys import PolicyError, check_run_id

    try:
        check_run_id(run_id)
    except PolicyError as exc:
        raise UsageError(f"run id {run_id!r}: {exc.message}") from None


def _paths_from(source: str) -> list[str]:
    """``--files-from``: one path per line (``-``: stdin), taken as written; blank lines
    skipped. Bytes as the file system names them, so any file name can be listed."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise UsageError(
            f"--files-from {source}: cannot read it: {exc.strerror}",
            hint="give a readable file of paths, one per line, or - for stdin",
        ) from None
    return [os.fsdecode(line.removesuffix(b"\r")) for line in data.split(b"\n") if line.strip()]


@dataclass(frozen=True)
class _Found:
    """What push was asked to look at, and how (its path flags)."""

    paths: list[str]
    listed: list[str]
    base: Path
    literal: bool
    include_hidden: bool
    follow_symlinks: bool
    exclude: list[str]

    def excluded(self) -> Callable[[str], bool] | None:
        """The ``--exclude`` patterns as a test of a name, with .gitignore's rules (pathspec)."""
        if not self.exclude:
            return None
        from pathspec import GitIgnoreSpec

        return GitIgnoreSpec.from_lines(self.exclude).match_file


def _patterns_from(path: Path | None) -> list[str]:
    """The lines of an ``--exclude-from`` file."""
    if path is None:
        return []
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"--exclude-from {path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--exclude-from {path}: not UTF-8 text") from None


def _files_to_push(found: _Found, policy: NoFilesPolicy, console: Console) -> "list[LocalFile]":
    """The files PATHS (and ``--files-from``) name, with ``--if-no-files-found`` applied;
    what was left out (hidden, symlinks out of the tree) is said once, with the flag."""
    from s3sign.transfer.files import expand_paths

    expansion = expand_paths(
        found.paths,
        found.base,
        literal=found.literal,
        listed=found.listed,
        include_hidden=found.include_hidden,
        follow_symlinks=found.follow_symlinks,
        excluded=found.excluded(),
    )
    left_out = [
        (expansion.hidden, "hidden file or folder", "hidden files or folders", "--include-hidden"),
        (expansion.outside, "symlink out of --base", "symlinks out of --base", "--follow-symlinks"),
        (expansion.excluded, "file", "files", ""),
    ]
    for names, one, many, flag in left_out:
        if names:
            why = f"{flag} takes them" if flag else "as --exclude asked"
            kind = one if len(names) == 1 else many
            console.note(f"left out {len(names):,} {kind} ({_some(names, ', ')}): {why}")
    nothing = not expansion.files
    if policy is NoFilesPolicy.warn or (policy is NoFilesPolicy.error and not nothing):
        for unmatched in expansion.unmatched:
            console.warning(f"{unmatched}: no file matched")
    if nothing and policy is NoFilesPolicy.error:
        named = [repr(path) for path in [*found.paths, *found.listed]]
        raise UsageError(
            "no files matched " + (_some(named, " ") if named else "(an empty list)"),
            hint="check the paths (quote globs to let s3sign expand them), "
            "or pass --if-no-files-found warn|ignore"
            + ("; or the flag named above" if expansion.hidden or expansion.outside else ""),
        )
    return list(expansion.files)


def _some(names: Sequence[str], separator: str) -> str:
    """The first three names, and how many more."""
    more = f" and {len(names) - 3:,} more" if len(names) > 3 else ""
    return separator.join(names[:3]) + more


def _backend_url(configured: str | None) -> str:
    if not configured:
        raise ConfigError(
            "no backend to ask for upload URLs",
            hint="pass --backend URL, set S3SIGN_BACKEND, or backend: in s3sign.yaml",
        )
    return configured


def _run_token(flag: str | None, run_id: str) -> str:
    import os

    token = flag or os.environ.get("S3SIGN_TOKEN")
    hint = (
        f"mint one with 's3sign token {run_id}' where S3SIGN_SERVER_SECRET is set, "
        "then pass --token or set S3SIGN_TOKEN"
    )
    if not token:
        raise CredentialsError("no run token", hint=hint)
    token = token.strip()  # a trailing newline from a file or a secret store
    if not token.isascii() or not token.isprintable() or " " in token:
        raise CredentialsError(
            "the run token holds a line break, a space or a character outside ASCII: "
            "it is not one 's3sign token' mints",
            hint=hint,
        )
    return token


def _run_push(
    backend: str,
    token: str,
    options: "PushOptions",
    files: "list[LocalFile]",
    console: Console,
    *,
    json_report: bool,
    manifest: Path | None,
) -> int:
    """Push, then report (summary, ``--json``, ``--manifest``) even when the push was cut short.

    Returns how many files failed.
    """
    import json

    from s3sign.cli.console import summary
    from s3sign.transfer.backend import BackendClient
    from s3sign.transfer.push import Pusher
    from s3sign.transfer.report import PushReport

    client = BackendClient(
        backend, token, read_timeout=options.stall_timeout, transport=options.transport
    )
    pusher = Pusher(client, options, _push_reporter(console, json_report, options.concurrency))
    fatal = None  # the error that cut the push short: said once, not once per file
    try:
        with _sigterm_interrupts():
            pusher.push(files)
    except (S3SignError, KeyboardInterrupt) as exc:
        fatal = stop_reason(exc)
        raise
    finally:
        client.close()
        report = pusher.report or PushReport(options.run_id)
        document = json.dumps(report.wire(), ensure_ascii=False)
        if manifest is not None:
            manifest.write_text(document + "\n", encoding="utf-8")
        if json_report:
            typer.echo(document)
        elif files:
            summary(console, report, fatal)
    return report.count("failed")


def split_target(target: str, key: str | None) -> tuple[str, str]:
    """``BUCKET KEY`` or ``s3://bucket/key`` -> (bucket, key)."""
    if target.startswith("s3://"):
        if key is not None:
            raise UsageError(
                "give s3://bucket/key or BUCKET KEY, not both",
                hint="e.g. s3sign sign s3://my-bucket/logs/build.txt --size 123",
            )
        bucket, _, object_key = target[len("s3://") :].partition("/")
        return bucket, object_key
    if key is None:
        raise UsageError(
            "missing the object key",
            hint="e.g. s3sign sign my-bucket logs/build.txt --size 123",
        )
    return target, key


def _parse_size_flag(text: str | None) -> int | None:
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("-") and stripped[1:].isdigit():
        raise UsageError(f"--size {stripped} is negative", hint="pass the body size in bytes")
    try:
        return parse_size(stripped)
    except ValueError as exc:
        raise UsageError(f"--size: {exc}") from None


def _parse_meta(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise UsageError(f"--meta {item!r} is not NAME=VALUE", hint="e.g. --meta build=1234")
    return name, value


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 time", hint="e.g. --now 2026-01-31T12:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _with_file(request: SignRequest, path: Path, checksum: Checksum) -> SignRequest:
    """Fill size, content type and checksum from a file; explicit flags win."""
    if request.method != "PUT":
        raise UsageError("--file only applies to PUT", hint="drop --file, or use --method put")
    if request.size is not None:
        raise UsageError("give --size or --file, not both", hint="--file measures the size itself")
    from s3sign.transfer.files import file_facts  # hashing and MIME tables: only for --file

    explicit_checksum = request.sha256 is not None or request.md5 is not None
    facts = file_facts(path, "none" if explicit_checksum else checksum)
    return request._replace(
        size=facts.size,
        content_type=request.content_type or facts.content_type,
        sha256=request.sha256 or facts.sha256,
        md5=request.md5 or facts.md5,
    )


def main() -> None:
    """Console-script entry point."""
    if COMPLETE_VAR in os.environ:  # a shell asks for completions: only then load that code
        from typer._completion_classes import completion_init

        completion_init()
    try:
        app()
    finally:
        # The work is done and every file closed: spare the interpreter's last garbage
        # collection over every object at exit (25-40 ms after pushing 1,000 files).
        gc.freeze()
