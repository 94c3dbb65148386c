"""The read half of the command line: ``s3sign ls`` lists a run's stored files, ``s3sign
link`` prints a stable link to one, ``s3sign pull`` downloads them, checked.

No ``from __future__ import annotations`` here: Typer reads every parameter's annotation at
start-up, and string annotations cost it an ``eval`` each.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from s3sign.cli.options import (
    BackendOption,
    CliState,
    Quiet,
    Verbose,
    backend_client,
    backend_url,
    check_run_id_flag,
    command_state,
    flag,
    option,
    run_token_for,
)
from s3sign.cli.reporting import Report, reporter_for, reports, sigterm_interrupts
from s3sign.errors import ExitCode, UsageError

if TYPE_CHECKING:  # imported where used: `sign` must start without them
    from collections.abc import Iterator

    from s3sign.protocol import StoredFile
    from s3sign.transfer.backend import BackendClient
    from s3sign.transfer.listing import Chosen

RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to read.")]
Patterns = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="PATTERNS...",
        help="Names, folders or globs (quoted: *, ?, **, [...]); all files if none.",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    option(
        "TOKEN",
        "A read token: 's3sign token RUN --scope read' (S3SIGN_TOKEN).",
        show_default=False,
    ),
]
JsonReport = Annotated[
    bool, flag("--json", "Print a JSON report, with each file's size and checksum.")
]


def ls(
    ctx: typer.Context,
    run_id: RunId,
    patterns: Patterns = None,
    backend: BackendOption = None,
    token: Token = None,
    json_report: JsonReport = False,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """List a run's stored files."""
    from s3sign.transfer.listing import stored_files

    state = command_state(ctx, verbose, quiet)
    check_run_id_flag(run_id)
    settings = state.settings({"backend": backend, "token": token})
    token = run_token_for(settings, state.environment.env, run_id, "read")
    client = backend_client(settings, token)
    try:
        files = stored_files(client, run_id, patterns or [], details=json_report)
        if json_report:
            count = _json_lines(state, run_id, files)
        elif state.environment.stdout_isatty:
            count = _table(state, files)
        else:
            count = 0
            for stored in files:  # one name a line, for scripts: escaped, never two lines
                state.out(_shown(stored.file_name))
                count += 1
    finally:
        client.close()
    state.console.info(f"{count:,} files in run {run_id}")


def _table(state: CliState, files: "Iterator[StoredFile]") -> int:
    """Size, time and name, a file a line, for a person at a terminal."""
    from s3sign.units import format_size

    count = total = 0
    for stored in files:
        when = (stored.last_modified or "")[:19].replace("T", " ")
        state.out(f"{format_size(stored.size):>10}  {when:<19}  {_shown(stored.file_name)}")
        count, total = count + 1, total + stored.size
    state.console.note(f"{count:,} file{'' if count == 1 else 's'}, {format_size(total)}")
    return count


def _json_lines(state: CliState, run_id: str, files: "Iterator[StoredFile]") -> int:
    """The versioned report (``{"version": 1, "runId", "files": [...], "status"}``), the
    files written as their pages come: the same shape ``push --json`` prints."""
    from s3sign.codec import to_wire

    state.out(json.dumps({"version": 1, "runId": run_id})[:-1] + ', "files": [', end="")
    count = 0
    for stored in files:
        entry = json.dumps(to_wire(stored), ensure_ascii=False)
        state.out(("\n" if count == 0 else ",\n") + entry, end="")
        count += 1
    state.out(f'], "status": "success", "count": {count}}}')
    return count


def _shown(name: str) -> str:
    from s3sign.cli.console import printable

    return printable(name)


Name = Annotated[str, typer.Argument(metavar="NAME", help="The file's name in the run.")]
LinkTtl = Annotated[str | None, option("DURATION", "Lifetime: 12h, 30d, 365d.  [default: 30d]")]


def link(
    ctx: typer.Context,
    run_id: RunId,
    name: Name,
    backend: BackendOption = None,
    ttl: LinkTtl = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Print a stable link to one file of a run."""
    from urllib.parse import quote

    from s3sign.keys import PolicyError, normal_name, object_key
    from s3sign.server.tokens import mint_link, server_keys
    from s3sign.units import format_duration, iso_utc

    state = command_state(ctx, verbose, quiet)
    check_run_id_flag(run_id)
    settings = state.settings({"backend": backend, "link_ttl": ttl}, link_ttl="--ttl")
    try:
        object_key(settings.key_prefix, run_id, name)  # a name a file of the run can have
    except PolicyError as exc:
        raise UsageError(f"{name!r}: {exc.message}") from None
    if settings.link_ttl > settings.max_link_ttl:
        raise UsageError(
            f"--ttl {format_duration(settings.link_ttl)} is longer than max_link_ttl "
            f"({format_duration(settings.max_link_ttl)}): the backend would refuse the link",
            hint="ask for a shorter one, or raise max_link_ttl (S3SIGN_MAX_LINK_TTL) on both sides",
        )
    stored = normal_name(name)
    secret = server_keys(settings.server_secret, settings.server_secrets).minting
    minted, expires = mint_link(run_id, stored, settings.link_ttl, secret)
    path = f"/v1/runs/{run_id}/files/{quote(stored, safe='/')}"
    state.console.info(f"link to {run_id}/{stored}, expires {iso_utc(expires)}")
    state.out(f"{backend_url(settings.backend)}{path}?token={minted}")


Output = Annotated[
    Path, typer.Option("--output", "-o", metavar="DIR", help="Where the files land.")
]
Concurrency = Annotated[int | None, option("N", "Downloads in flight.  [default: 8]")]
Manifest = Annotated[Path | None, option("FILE", "Also write the JSON report to FILE.")]
DryRun = Annotated[bool, flag("--dry-run", "List what would be downloaded; fetch nothing.")]
SkipExisting = Annotated[
    bool, flag("--skip-existing", "Keep local files of the same size and checksum.")
]
FilesFrom = Annotated[
    str | None,
    option(
        "FILE",
        "Also the names in FILE, one per line, as written ('-': stdin); each must be there.",
        show_default=False,
    ),
]


def pull(
    ctx: typer.Context,
    run_id: RunId,
    patterns: Patterns = None,
    output: Output = Path("."),
    files_from: FilesFrom = None,
    backend: BackendOption = None,
    token: Token = None,
    concurrency: Concurrency = None,
    json_report: JsonReport = False,
    manifest: Manifest = None,
    dry_run: DryRun = False,
    skip_existing: SkipExisting = False,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Download a run's files, each checked against what is stored."""
    from s3sign.cli.console import summary
    from s3sign.cli.paths import paths_from
    from s3sign.errors import S3SignError, stop_reason
    from s3sign.transfer.listing import Chosen, stored_files
    from s3sign.transfer.pull import Puller, PullOptions
    from s3sign.transfer.report import FileOutcome

    state = command_state(ctx, verbose, quiet)
    check_run_id_flag(run_id)
    settings = state.settings({"backend": backend, "token": token, "concurrency": concurrency})
    token = run_token_for(settings, state.environment.env, run_id, "read")
    client = backend_client(settings, token)
    names = None if files_from is None else paths_from(files_from, state.environment.stdin)
    try:
        chosen = Chosen(patterns or [], names)
        count, total, missing = _counted(state, client, run_id, chosen, dry_run)
        if not count and not missing:
            raise UsageError(
                f"no files of run {run_id} matched", hint="see them with 's3sign ls RUN'"
            )
        if dry_run:
            if missing:
                raise typer.Exit(ExitCode.SOME_FAILED)
            return
        _check_output(output)
        options = PullOptions(
            run_id=run_id,
            concurrency=settings.concurrency,
            stall_timeout=settings.stall_timeout,
            transport=settings.transport,
            skip_existing=skip_existing,
        )
        reporter = reporter_for(
            state, silent=json_report, concurrency=options.concurrency, doing="pulling"
        )
        puller, fatal = Puller(client, options, reporter), None
        with reports(state, Report(json_report, manifest), run_id) as report:
            try:
                with sigterm_interrupts():
                    files = stored_files(client, run_id, Chosen(patterns or [], names))
                    puller.pull(files, output, count=count, total_bytes=total, report=report)
                for name in missing:  # said above; in the report too
                    report.record(FileOutcome(name, 0, error=f"not_found: not in run {run_id}"))
            except (S3SignError, KeyboardInterrupt) as exc:
                fatal = stop_reason(exc)
                raise
            finally:
                if not json_report:
                    summary(state.console, report, fatal, done="downloaded")
    finally:
        client.close()
    if report.count("failed"):
        raise typer.Exit(ExitCode.SOME_FAILED)


def _counted(
    state: CliState, client: "BackendClient", run_id: str, chosen: "Chosen", dry_run: bool
) -> tuple[int, int, list[str]]:
    """The files chosen, listed once before the pull (printed, with ``--dry-run``): how
    many, their bytes, and the names asked for that the run lacks (each said)."""
    from s3sign.transfer.listing import stored_files

    count = total = 0
    for stored in stored_files(client, run_id, chosen):
        count, total = count + 1, total + stored.size
        if dry_run:
            state.out(f"{stored.size:>14,}  {_shown(stored.file_name)}")
    missing = chosen.missing()
    for name in missing:
        state.console.error(f"{_shown(name)}: not in run {run_id}")
    return count, total, missing


def _check_output(output: Path) -> None:
    """The target folder: made if missing; a usage error if it cannot be one."""
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--output {output}: {exc.strerror}") from None
    if not output.is_dir():
        raise UsageError(f"--output {output} is not a folder")
