"""What the push engine tells whoever watches it. No drawing here: see cli/console.py.

The engine calls a ``Reporter`` from its worker threads, so implementations
must be thread-safe. ``advanced`` may go backwards: a retried upload starts
its bytes again.

A ``PushReport`` keeps counts, sizes and the failures by reason, whatever the number of
files; each file's outcome goes to its ``sink`` as the file finishes (``ReportStream``
writes the JSON report that way), and into ``files`` only when it keeps them (the
Python API does by default; the command line does not, so that a push of a million
files holds no list of a million outcomes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TextIO

Status = Literal["uploaded", "skipped", "failed"]
REPORT_VERSION = 1
NAMES_PER_REASON = 3  # failed files named per reason in the summary
MAX_REASONS = 100  # reasons kept with their names; the rest are counted as one


@dataclass
class FileOutcome:
    """One file's fate, filled in as the push goes (final once it is recorded)."""

    file_name: str
    size: int
    key: str | None = None
    sha256: str | None = None
    etag: str | None = None
    status: Status = "failed"
    error: str | None = None
    attempts: int = 0

    def wire(self) -> dict[str, object]:
        document: dict[str, object] = {
            "fileName": self.file_name,
            "key": self.key,
            "size": self.size,
            "sha256": self.sha256,
            "etag": self.etag,
            "status": self.status,
            "attempts": self.attempts,
        }
        if self.error is not None:
            document["error"] = self.error
        return document


@dataclass
class Failures:
    """Failed files by reason: how many, and the first few names of each."""

    count: int
    names: list[str]


@dataclass
class PushReport:
    """The versioned result of a push: what ``--json`` prints and ``--manifest`` writes."""

    run_id: str
    keep_files: bool = True
    sink: Callable[[FileOutcome], None] | None = None  # each outcome, as it is recorded
    files: list[FileOutcome] = field(default_factory=list)  # only with keep_files
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)  # about the whole push (reporter.notice)
    not_listed: int = 0  # files the push was cut short before it reached
    counts: dict[Status, int] = field(default_factory=dict)
    sizes: dict[Status, int] = field(default_factory=dict)
    retries: int = 0
    failures: dict[str, Failures] = field(default_factory=dict)  # by reason
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, outcome: FileOutcome) -> None:
        """Count one file's final outcome (once per file), and pass it on."""
        with self._lock:
            status = outcome.status
            self.counts[status] = self.counts.get(status, 0) + 1
            self.sizes[status] = self.sizes.get(status, 0) + outcome.size
            self.retries += max(0, outcome.attempts - 1)
            if status == "failed":
                self._failed(outcome)
            if self.keep_files:
                self.files.append(outcome)
            if self.sink is not None:
                self.sink(outcome)

    def _failed(self, outcome: FileOutcome) -> None:
        reason = outcome.error or "failed"
        if reason not in self.failures and len(self.failures) >= MAX_REASONS:
            reason = "failed for other reasons"
        failures = self.failures.setdefault(reason, Failures(0, []))
        failures.count += 1
        if len(failures.names) < NAMES_PER_REASON:
            failures.names.append(outcome.file_name)

    @property
    def status(self) -> Literal["success", "partial", "error"]:
        failed = self.count("failed") + self.not_listed
        if not failed:
            return "success"
        return "error" if failed == sum(self.counts.values()) + self.not_listed else "partial"

    def count(self, status: Status) -> int:
        return self.counts.get(status, 0)

    def bytes(self, status: Status) -> int:
        return self.sizes.get(status, 0)

    def totals(self) -> dict[str, object]:
        """Everything but the files: the end of the JSON report."""
        totals: dict[str, object] = {"status": self.status, "seconds": round(self.seconds, 3)}
        return (
            totals
            | ({"notices": list(self.notices)} if self.notices else {})
            | ({"notListed": self.not_listed} if self.not_listed else {})
        )

    def wire(self) -> dict[str, object]:
        """The whole report as one document (the files it kept)."""
        head = {"version": REPORT_VERSION, "runId": self.run_id}
        return head | {"files": [f.wire() for f in self.files]} | self.totals()


class ReportStream:
    """The JSON report written as the push goes: each file as it finishes, the totals last
    (the document's keys come in that order). Thread-safe."""

    def __init__(self, out: TextIO, run_id: str) -> None:
        self._out = out
        self._first = True
        self._lock = threading.Lock()
        head = json.dumps({"version": REPORT_VERSION, "runId": run_id})
        out.write(head[:-1] + ', "files": [')

    def add(self, outcome: FileOutcome) -> None:
        line = json.dumps(outcome.wire(), ensure_ascii=False)
        with self._lock:
            self._out.write(("\n" if self._first else ",\n") + line)
            self._first = False

    def close(self, report: PushReport) -> None:
        with self._lock:
            self._out.write("], " + json.dumps(report.totals())[1:] + "\n")
            self._out.flush()


class Reporter(Protocol):
    """Progress events from the push engine (called from several threads)."""

    def start(self, files: int, total_bytes: int) -> None: ...

    def file_started(self, name: str, size: int) -> None: ...

    def advanced(self, name: str, delta: int) -> None: ...

    def retrying(self, name: str, attempt: int, reason: str) -> None: ...

    def notice(self, message: str) -> None:
        """Something about the whole push the user should know (said once)."""

    def file_finished(self, outcome: FileOutcome) -> None: ...

    def finish(self, report: PushReport) -> None: ...


class SilentReporter:
    """Reports nothing: for ``--quiet``, ``--json`` and the Python API."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def file_started(self, name: str, size: int) -> None:
        pass

    def advanced(self, name: str, delta: int) -> None:
        pass

    def retrying(self, name: str, attempt: int, reason: str) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def file_finished(self, outcome: FileOutcome) -> None:
        pass

    def finish(self, report: PushReport) -> None:
        pass
