"""``s3sign push`` and ``s3sign demo``: files to S3 through a backend, with a live display
on a terminal and plain lines elsewhere.

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
    PushChecksumChoice,
    Quiet,
    Verbose,
    backend_url,
    check_run_id_flag,
    command_state,
    flag,
    option,
    run_token_for,
)
from s3sign.cli.paths import Found, NoFilesPolicy, files_to_push, paths_from, patterns_from
from s3sign.cli.reporting import Report, reporter_for, reports, sigterm_interrupts
from s3sign.config import PushChecksum, Settings
from s3sign.errors import (
    ExitCode,
    S3SignError,
    UsageError,
    stop_reason,
)

if TYPE_CHECKING:  # imported where used: `sign` must start without them
    from s3sign.transfer.files import Expansion
    from s3sign.transfer.push import PushOptions

RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to upload into.")]
Paths = Annotated[
    list[str] | None,
    typer.Argument(metavar="PATHS...", help="Files, directories, globs.", show_default=False),
]
Token = Annotated[
    str | None,
    option("TOKEN", "Run token from 's3sign token' (S3SIGN_TOKEN).", show_default=False),
]
Base = Annotated[Path, option("DIR", "Names are relative to this directory.")]
Concurrency = Annotated[int | None, option("N", "Uploads in flight.  [default: 8]")]
ChecksumFlag = Annotated[
    PushChecksumChoice | None,
    typer.Option(
        case_sensitive=False,
        help="Checksum bound into each upload (auto: the strongest the store enforces, "
        "as the backend found out).  [default: auto]",
        show_default=False,
    ),
]
ContentType = Annotated[str | None, option("TYPE", "Content type for every file (else guessed).")]
IfNoFilesFound = Annotated[
    NoFilesPolicy, typer.Option(case_sensitive=False, help="When no path matches a file.")
]
SkipExisting = Annotated[
    bool, flag("--skip-existing", "Skip files already stored, same size and hash.")
]
DryRun = Annotated[bool, flag("--dry-run", "List what would be uploaded; sign nothing.")]
JsonReport = Annotated[bool, flag("--json", "Print the JSON report on stdout.")]
Manifest = Annotated[Path | None, option("FILE", "Also write the JSON report to FILE.")]
Literal = Annotated[bool, flag("--literal", "Take paths as written: no glob expansion.")]
FilesFrom = Annotated[
    str | None,
    option(
        "FILE", "Also the paths in FILE, one per line, as written ('-': stdin).", show_default=False
    ),
]
IncludeHidden = Annotated[
    bool, flag("--include-hidden", "Also files and folders named .*, found by a walk or glob.")
]
FollowSymlinks = Annotated[
    bool, flag("--follow-symlinks", "Also symlinks to files outside --base.")
]
Exclude = Annotated[
    list[str] | None,
    option(
        "PATTERN", "Leave out what matches, as .gitignore does (repeatable).", show_default=False
    ),
]
ExcludeFrom = Annotated[Path | None, option("FILE", "Also the patterns in FILE (a .gitignore).")]


def push(
    ctx: typer.Context,
    run_id: RunId,
    paths: Paths = None,
    backend: BackendOption = None,
    token: Token = None,
    base: Base = Path("."),
    concurrency: Concurrency = None,
    checksum: ChecksumFlag = None,
    content_type: ContentType = None,
    if_no_files_found: IfNoFilesFound = NoFilesPolicy.error,
    skip_existing: SkipExisting = False,
    dry_run: DryRun = False,
    json_report: JsonReport = False,
    manifest: Manifest = None,
    literal: Literal = False,
    files_from: FilesFrom = None,
    include_hidden: IncludeHidden = False,
    follow_symlinks: FollowSymlinks = False,
    exclude: Exclude = None,
    exclude_from: ExcludeFrom = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Upload files into a run, straight to S3."""
    state = command_state(ctx, verbose, quiet)
    check_run_id_flag(run_id)
    settings = state.settings(
        {
            "backend": backend,
            "token": token,
            "concurrency": concurrency,
            "checksum": checksum.value if checksum and checksum != "auto" else None,
        }
    )
    if content_type is not None:
        from s3sign.signing.presign import check_content_type

        check_content_type(content_type, "--content-type")
    listed = paths_from(files_from, state.environment.stdin) if files_from is not None else []
    if not paths and not listed and files_from is None:
        raise UsageError(
            "no paths to push",
            hint="name files, directories or globs after RUN_ID, or pass --files-from FILE",
        )
    patterns = [*(exclude or []), *patterns_from(exclude_from)]
    found = Found(paths or [], listed, base, literal, include_hidden, follow_symlinks, patterns)
    files = files_to_push(found, if_no_files_found, state.console)
    if dry_run:
        _dry_run(state, run_id, files, settings)
        return
    if not files.count:  # allowed by --if-no-files-found warn|ignore: no backend call at all
        if json_report:
            from s3sign.transfer.report import PushReport

            state.out(json.dumps(PushReport(run_id).wire()))
        return
    report = Report(json_report, manifest)
    options = _push_options(settings, run_id, checksum, content_type, skip_existing, report)
    if _run_push(state, settings, options, files, report):
        raise typer.Exit(ExitCode.SOME_FAILED)


def _push_options(
    settings: Settings,
    run_id: str,
    checksum: PushChecksumChoice | None,
    content_type: str | None,
    skip_existing: bool,
    report: "Report",
) -> "PushOptions":
    from s3sign.transfer.push import PushOptions

    # The flag, else S3SIGN_CHECKSUM or the config file, else what the store enforces.
    push_checksum: PushChecksum = "auto"
    if checksum is not None:
        push_checksum = checksum.value
    elif settings.sources.get("checksum") in ("env", "file"):
        push_checksum = settings.checksum
    return PushOptions.from_settings(
        settings,
        run_id,
        checksum=push_checksum,
        content_type=content_type,
        skip_existing=skip_existing,
        hash_multipart=report.wanted or skip_existing,
    )


def demo(ctx: typer.Context, verbose: Verbose = 0, quiet: Quiet = False) -> None:
    """See the whole round trip work on this machine."""
    import tempfile

    from s3sign.cli.console import summary
    from s3sign.local.demo import LINKED, run_demo
    from s3sign.units import format_size

    state = command_state(ctx, verbose, quiet)
    console = state.console
    with sigterm_interrupts(), tempfile.TemporaryDirectory(prefix="s3sign-demo-") as workdir:
        reporter = reporter_for(state, silent=False, concurrency=8)
        report = run_demo(Path(workdir), reporter, console.note)
    summary(console, report.push)
    if report.pulled is not None:
        summary(console, report.pulled, done="pulled back")
    for name, size, same in report.verified:
        mark = "identical" if same else "DIFFERENT"
        console.note(f"  {mark}  {format_size(size):>8}  {name}")
    link = "served it" if report.link_ok else "did NOT serve it"
    console.note(f"a stable link to {LINKED} (a redirect to a fresh signed GET) {link}")
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


def _dry_run(state: CliState, run_id: str, files: "Expansion", settings: Settings) -> None:
    """Each file's size and the key it would get (or why the backend would refuse it)."""
    from s3sign.cli.console import printable
    from s3sign.keys import PolicyError, object_key
    from s3sign.transfer.backend import BackendClient

    backend = settings.backend
    prefix, where = "runs", "the default prefix: no backend is configured"
    if backend:
        try:
            client = BackendClient(backend, "", attempts=1, transport=settings.transport)
            prefix, where = client.info().key_prefix, backend
        except S3SignError:
            where = f"the default prefix: {backend} did not answer"
    for local in files.files:
        try:
            key = object_key(prefix, run_id, local.name)
        except PolicyError as exc:
            key = f"{local.name}  (refused: {exc.message})"
        if local.conflict:
            key = f"{local.name}  (refused: {local.conflict})"
        state.out(f"{local.size:>14,}  {printable(key)}")  # a name is one line, as it is
    state.console.note(
        f"{files.count} files, {files.total_bytes:,} bytes, keys under {prefix}/{run_id}/ "
        f"({where}): nothing was signed"
    )


def _run_push(
    state: CliState,
    settings: Settings,
    options: "PushOptions",
    files: "Expansion",
    wanted: Report,
) -> int:
    """Push, then report (summary, ``--json``, ``--manifest``) even when the push was cut short.

    Returns how many files failed.
    """
    from s3sign.cli.console import summary
    from s3sign.transfer.backend import BackendClient
    from s3sign.transfer.push import Pusher

    backend = backend_url(settings.backend)
    token = run_token_for(settings, state.environment.env, options.run_id)
    client = BackendClient(
        backend, token, read_timeout=options.stall_timeout, transport=options.transport
    )
    reporter = reporter_for(state, silent=wanted.json, concurrency=options.concurrency)
    pusher = Pusher(client, options, reporter)
    fatal = None  # the error that cut the push short: said once, not once per file
    with reports(state, wanted, options.run_id) as report:
        try:
            with sigterm_interrupts():
                pusher.push(
                    files.files, count=files.count, total_bytes=files.total_bytes, report=report
                )
        except (S3SignError, KeyboardInterrupt) as exc:
            fatal = stop_reason(exc)
            raise
        finally:
            client.close()
            if not wanted.json:
                summary(state.console, report, fatal)
    return report.count("failed")
