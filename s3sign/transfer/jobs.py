"""One file on its way through a push, and the ways an upload can end.

A ``Job`` lives from the file's batch being signed until the backend verified it: a push
holds the jobs of a few batches at a time, never one per file of the run.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from s3sign.protocol import FileSpec, MultipartPlan
from s3sign.transfer.files import LocalFile
from s3sign.transfer.report import FileOutcome

DISAPPEARED = "the file disappeared after it was listed"
SHRANK = "the file got shorter while it was being uploaded"
# One reason, however it was found (the PUT, the backend's create or complete): one line
# of the summary.
ALREADY_EXISTS = "in the write-once run already: not replaced (already_exists)"
STORE_DOWN = "not tried: the object store stopped answering (the uploads before it failed)"


class Fatal(Exception):
    """This file cannot be uploaded; retrying will not help."""


class AlreadyExists(Fatal):
    """A write-once run holds a file of this name already: S3 refused to replace it."""

    def __init__(self) -> None:
        super().__init__(ALREADY_EXISTS)


class Retryable(Exception):
    """A transient failure: back off and try again."""

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.network = network  # no answer at all, rather than an error status


class Expired(Exception):
    """The URL expired: sign it again and retry."""


@dataclass(frozen=True)
class Signed:
    method: str
    url: str
    headers: dict[str, str]
    refresh_at: datetime  # sign again from here on: the URL is about to expire


class PartDigests:
    """The parts' SHA-256s from the one pass over a multipart file that also gives its whole
    SHA-256 (for parts of ``part_size``): each part's upload waits for its own."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self._digests: dict[int, str] = {}
        self._finished = False
        self._changed = threading.Condition()

    def add(self, number: int, digest: str) -> None:
        with self._changed:
            self._digests[number] = digest
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def get(self, number: int) -> str | None:
        """Part ``number``'s digest; None if the pass ended without it (the file shrank)."""
        with self._changed:
            while number not in self._digests and not self._finished:
                self._changed.wait(0.25)
            return self._digests.get(number)

    def all(self) -> list[str]:
        """Every part's digest, in order, once the pass has ended."""
        return [self._digests[number] for number in sorted(self._digests)]


@dataclass
class Job:
    """One file on its way: what was listed, signed and sent."""

    local: LocalFile
    outcome: FileOutcome
    spec: FileSpec
    sha256: Future[str | None] | None = None
    upload: Signed | None = None
    plan: MultipartPlan | None = None
    parts: dict[int, Signed] = field(default_factory=dict)
    part_digests: dict[int, str] = field(default_factory=dict)  # when parts are bound to one
    hashed_parts: PartDigests | None = None  # worked out ahead, with the whole SHA-256
    etags: dict[int, str] = field(default_factory=dict)
    retries: int = 0
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def check_unchanged(local: LocalFile, when: str) -> None:
    """``Fatal`` unless the file still has the size and modification time it was listed with."""
    try:
        info = os.stat(local.path)
    except FileNotFoundError:
        raise Fatal(DISAPPEARED) from None
    except OSError as exc:
        raise Fatal(f"cannot read it: {exc.strerror}") from None
    if info.st_size != local.size or info.st_mtime_ns != local.mtime_ns:
        raise Fatal(
            f"the file changed {when} (size or modification time); not uploaded as it is "
            "still being written?"
        )
