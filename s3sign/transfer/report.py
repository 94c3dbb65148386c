"""What the push engine tells whoever watches it. No drawing here: see console.py.

The engine calls a ``Reporter`` from its worker threads, so implementations
must be thread-safe. ``advanced`` may go backwards: a retried upload starts
its bytes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Status = Literal["uploaded", "skipped", "failed"]


@dataclass
class FileOutcome:
    """One file's fate, filled in as the push goes (final once the push returns)."""

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
class PushReport:
    """The versioned result of a push: what ``--json`` prints and ``--manifest`` writes."""

    run_id: str
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)  # about the whole push (reporter.notice)

    @property
    def status(self) -> Literal["success", "partial", "error"]:
        failed = sum(1 for f in self.files if f.status == "failed")
        if not failed:
            return "success"
        return "error" if failed == len(self.files) else "partial"

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    def bytes(self, status: Status) -> int:
        return sum(f.size for f in self.files if f.status == status)

    @property
    def retries(self) -> int:
        return sum(max(0, f.attempts - 1) for f in self.files)

    def wire(self) -> dict[str, object]:
        return {
            "version": 1,
            "status": self.status,
            "runId": self.run_id,
            "seconds": round(self.seconds, 3),
            "files": [f.wire() for f in self.files],
        } | ({"notices": list(self.notices)} if self.notices else {})


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
