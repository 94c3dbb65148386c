"""What a push or a pull shows and writes as it goes: the live display on a terminal,
plain lines elsewhere, the JSON report streamed to stdout and the manifest, and SIGTERM
taken as Ctrl-C.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from s3sign.cli.options import CliState
from s3sign.errors import Terminated, UsageError

if TYPE_CHECKING:  # imported where used: `sign` must start without them
    from s3sign.transfer.report import FileOutcome, PushReport, Reporter


@dataclass(frozen=True)
class Report:
    """Where the push's JSON report goes: stdout (``--json``), a file (``--manifest``)."""

    json: bool
    manifest: Path | None

    @property
    def wanted(self) -> bool:
        return self.json or self.manifest is not None


def reporter_for(
    state: CliState, *, silent: bool, concurrency: int, doing: str = "pushing"
) -> "Reporter":
    """A live display on a terminal, plain lines elsewhere, nothing when ``silent``."""
    from s3sign.cli.console import LiveReporter, PlainReporter
    from s3sign.transfer.report import SilentReporter

    console = state.console
    if silent or console.verbosity < 0:
        return SilentReporter()
    if state.environment.live:
        return LiveReporter(console, concurrency)
    return PlainReporter(console, doing=doing)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
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


@contextmanager
def reports(state: CliState, wanted: Report, run_id: str) -> "Iterator[PushReport]":
    """The push's report, its files written as they finish to stdout (``--json``) and to
    the manifest (under a temporary name, renamed into place once whole), its totals at the
    end, also when the push is cut short."""
    import os

    from s3sign.transfer.report import PushReport, ReportStream

    streams: list[ReportStream] = []
    if wanted.json:
        streams.append(ReportStream(state.environment.stdout, run_id))
    manifest, partial = None, None
    if wanted.manifest is not None:
        partial = wanted.manifest.with_name(f".{wanted.manifest.name}.partial")
        try:
            manifest = open(partial, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"--manifest {wanted.manifest}: {exc.strerror}") from None
        streams.append(ReportStream(manifest, run_id))

    def sink(outcome: "FileOutcome") -> None:
        for stream in streams:
            stream.add(outcome)

    report = PushReport(run_id, keep_files=False, sink=sink if streams else None)
    try:
        yield report
    finally:
        for stream in streams:
            stream.close(report)
        if manifest is not None and partial is not None and wanted.manifest is not None:
            manifest.close()
            os.replace(partial, wanted.manifest)
