"""What every command shares: the root state, -v/-q, the choices and options that more
than one command takes.

No ``from __future__ import annotations`` here: Typer reads every parameter's annotation at
start-up, and string annotations cost it an ``eval`` each.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from s3sign.cli.console import Console
from s3sign.cli.environment import Environment
from s3sign.config import Settings, load_settings
from s3sign.errors import ConfigError, CredentialsError, UsageError

if TYPE_CHECKING:  # imported by the commands that call a backend
    from s3sign.transfer.backend import BackendClient


def option(metavar: str, help: str, **more: Any) -> Any:
    """A flag that takes a value (``typer.Option``), in one line."""
    return typer.Option(metavar=metavar, help=help, **more)


def flag(name: str, help: str) -> Any:
    """An on/off flag (``typer.Option``), in one line."""
    return typer.Option(name, help=help)


@dataclass
class CliState:
    """What the root options decided, shared with every command through ``ctx.obj``."""

    console: Console
    environment: Environment = field(default_factory=Environment)
    config: Path | None = None

    def settings(self, flags: Mapping[str, object | None] | None = None, **names: str) -> Settings:
        """The settings with these flags, by the one precedence (``load_settings``), from
        this run's environment; ``names``: flags not named after their key."""
        return load_settings(
            flags, config_path=self.config, env=self.environment.env, flag_names=names
        )

    def out(self, text: str, end: str = "\n") -> None:
        """A result on stdout."""
        self.environment.stdout.write(text + end)
        self.environment.stdout.flush()


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


def command_state(ctx: typer.Context, verbose: int, quiet: bool) -> CliState:
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
BackendOption = Annotated[str | None, option("URL", "The signing backend (S3SIGN_BACKEND).")]


def check_run_id_flag(run_id: str) -> None:
    from s3sign.keys import PolicyError, check_run_id

    try:
        check_run_id(run_id)
    except PolicyError as exc:
        raise UsageError(f"run id {run_id!r}: {exc.message}") from None


def backend_url(configured: str | None) -> str:
    if not configured:
        raise ConfigError(
            "no backend to ask for upload URLs",
            hint="pass --backend URL, set S3SIGN_BACKEND, or backend: in s3sign.yaml",
        )
    return configured


def backend_client(settings: Settings, token: str) -> "BackendClient":
    """A client of the backend the settings name, with ``token``, within their limits."""
    from s3sign.transfer.backend import BackendClient

    return BackendClient(
        backend_url(settings.backend),
        token,
        read_timeout=settings.stall_timeout,
        transport=settings.transport,
    )


def run_token_for(
    settings: Settings, env: Mapping[str, str], run_id: str, scope: str = "upload"
) -> str:
    """``--token`` / ``S3SIGN_TOKEN``, else a token the backend trades for the CI job's
    OIDC ID token (``S3SIGN_OIDC_TOKEN``, or GitHub Actions' own)."""
    from s3sign.transfer.oidc import token_or_exchange

    return run_token(token_or_exchange(settings, env, run_id, scope), run_id, scope)


def run_token(token: str | None, run_id: str, scope: str = "upload") -> str:
    """The run token (``--token``, else ``S3SIGN_TOKEN``), if it can be one."""
    hint = (
        f"mint one with 's3sign token {run_id}"
        + ("" if scope == "upload" else f" --scope {scope}")
        + "' where S3SIGN_SERVER_SECRET is set, "
        "then pass --token or set S3SIGN_TOKEN; in CI, the backend can trade the job's "
        "OIDC ID token instead (docs/ci.md, 'No stored secret')"
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
