"""The pull engine against a fake backend and a fake S3: retries, a URL signed again
after it expired, a refusal that is not retried, the checks before a file lands, big
files in ranges, and a pull stopped halfway."""

from __future__ import annotations

import _thread
import base64
import errno
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from s3sign.digests import composite_sha256
from s3sign.errors import BackendError
from s3sign.http.connections import Connections
from s3sign.http.wire import Response
from s3sign.protocol import DownloadResult, DownloadsResponse, SignedUpload, StoredFile
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.landing import Landing
from s3sign.transfer.pull import Puller, PullOptions
from s3sign.transfer.report import PushReport, SilentReporter

DATA = {"a.txt": b"alpha\n" * 100, "b/c.txt": b"see\n"}


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


PART = 5 * 1024 * 1024
BIG = os.urandom(2 * PART + 1234)  # three parts of 5 MiB, as push would have cut it


def composite(data: bytes) -> str:
    return composite_sha256([sha(data[at : at + PART]) for at in range(0, len(data), PART)])


@dataclass
class FakeBackend:
    signed: list[str] = field(default_factory=list)
    stored: dict[str, bytes] = field(default_factory=lambda: dict(DATA))
    checksums: dict[str, str] = field(default_factory=dict)  # as stored, if not sha(data)
    part_size: int | None = None

    def info(self) -> Any:
        if self.part_size is None:
            raise BackendError("no info")
        return SimpleNamespace(part_size=self.part_size, store=None)

    looked_up: list[str] = field(default_factory=list)

    def checksum(self, name: str) -> str:
        return self.checksums.get(name) or sha(DATA.get(name, b""))

    def etag(self, name: str) -> str:
        return "e-3" if name in self.checksums else "e"

    def downloads(self, run_id: str, names: list[str], lookup: bool = True) -> DownloadsResponse:
        """As the backend: with ``lookup``, what is stored (a HEAD each); without, URLs only."""
        self.signed.extend(names)
        if lookup:
            self.looked_up.extend(names)
        return DownloadsResponse(
            [
                DownloadResult(
                    name,
                    "ready",
                    f"runs/{run_id}/{name}",
                    SignedUpload(
                        "GET", f"s3://{name}#{len(self.signed)}", {}, "2099-01-01T00:00:00Z"
                    ),
                    size=len(self.stored[name]) if lookup else None,
                    etag=self.etag(name) if lookup else None,
                    sha256=self.checksum(name) if lookup else None,
                )
                for name in names
            ]
        )


@dataclass
class FakeS3:
    """Serves the backend's stored bytes (a ``Range`` with 206, unless ``ranges`` is
    false); ``script``: per name, answers to give first."""

    backend: FakeBackend
    script: dict[str, list[int]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    ranges: bool = True
    content_range: Callable[[int, int, int], str] = lambda a, b, n: f"bytes {a}-{b}/{n}"
    during: Callable[[], None] = lambda: None  # called with each answer, before its bytes
    checksums: bool = True  # does a whole GET's answer carry the stored checksum?
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fetch(
        self,
        url: str,
        headers: Any,
        sink: Callable[[bytes], None],
        limit: int,
        wanted: int | None = None,
    ) -> Response:
        name = url.removeprefix("s3://").split("#")[0]
        with self.lock:
            self.asked.append(url + (f" {headers['Range']}" if "Range" in headers else ""))
            answers = self.script.get(name, [])
            status = answers.pop(0) if answers else 0
        if status:
            message = b"Request has expired" if status == 403 else b"Slow down"
            return Response(
                status, {}, b"<Error><Code>X</Code><Message>" + message + b"</Message></Error>"
            )
        data = self.backend.stored[name]
        self.during()
        asked = re.fullmatch(r"bytes=(\d+)-(\d+)", headers.get("Range", ""))
        if not asked or not self.ranges:
            if wanted not in (None, 200):
                return Response(200, {}, b"")
            sink(data)
            said = {"x-amz-checksum-sha256": self.backend.checksum(name)} if self.checksums else {}
            return Response(200, {"etag": f'"{self.backend.etag(name)}"'} | said, b"")
        first, last = int(asked[1]), int(asked[2])
        for at in range(first, last + 1, 1024 * 1024):
            sink(data[at : min(at + 1024 * 1024, last + 1)])
        return Response(206, {"content-range": self.content_range(first, last, len(data))}, b"")

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("s3sign.transfer.download.backoff", lambda attempt: 0.0)


def pull(backend: FakeBackend, s3: FakeS3, root: Path) -> PushReport:
    puller = Puller(
        cast(BackendClient, backend),
        PullOptions(run_id="r1", concurrency=2),
        SilentReporter(),
        cast(Connections, s3),
    )
    listed = [StoredFile(name, len(data), "e") for name, data in backend.stored.items()]
    return puller.pull(listed, root, count=len(listed), total_bytes=0)


def big_backend(checksum: str | None = None) -> FakeBackend:
    backend = FakeBackend(part_size=PART)
    backend.stored["big.bin"] = BIG
    backend.checksums["big.bin"] = checksum or composite(BIG)
    return backend


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if "partial" in p.name]


def outcomes(report: PushReport) -> dict[str, tuple[str, int, str | None]]:
    return {f.file_name: (f.status, f.attempts, f.error) for f in report.files}


def test_a_busy_store_is_retried_and_an_expired_url_signed_again(tmp_path: Path) -> None:
    backend = FakeBackend()
    s3 = FakeS3(backend, {"a.txt": [503, 403]})
    report = pull(backend, s3, tmp_path)
    assert outcomes(report) == {"a.txt": ("uploaded", 3, None), "b/c.txt": ("uploaded", 1, None)}
    assert backend.signed.count("a.txt") == 3  # asked for again after each failed attempt
    assert (tmp_path / "a.txt").read_bytes() == DATA["a.txt"]


def test_bytes_unlike_the_stored_checksum_are_refused_and_not_retried(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.stored["a.txt"] = b"ALPHA\n" * 100  # changed in the store, same size
    s3 = FakeS3(backend)
    report = pull(backend, s3, tmp_path)
    status, attempts, error = outcomes(report)["a.txt"]
    assert (status, attempts) == ("failed", 1)
    assert "checksum_mismatch" in (error or "")
    assert not (tmp_path / "a.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    assert len([url for url in s3.asked if "a.txt" in url]) == 1
    assert (tmp_path / "b/c.txt").read_bytes() == DATA["b/c.txt"]


def test_a_store_that_keeps_refusing_fails_the_file_after_its_attempts(tmp_path: Path) -> None:
    backend = FakeBackend()
    s3 = FakeS3(backend, {"a.txt": [500] * 10})
    report = pull(backend, s3, tmp_path)
    status, _, error = outcomes(report)["a.txt"]
    assert status == "failed"
    assert "after 5 attempts" in (error or "")
    assert report.count("uploaded") == 1


def test_a_big_file_comes_in_ranges_checked_against_its_composite(tmp_path: Path) -> None:
    backend = big_backend()
    s3 = FakeS3(backend)
    report = pull(backend, s3, tmp_path)
    assert outcomes(report)["big.bin"] == ("uploaded", 1, None)
    assert (tmp_path / "big.bin").read_bytes() == BIG
    asked = [url.split(" ")[1] for url in s3.asked if url.startswith("s3://big.bin")]
    ranges = sorted(asked, key=lambda text: int(text.split("=")[1].split("-")[0]))
    last = len(BIG) - 1
    assert ranges == [
        f"bytes=0-{PART - 1}",
        f"bytes={PART}-{2 * PART - 1}",
        f"bytes={2 * PART}-{last}",
    ]


def test_a_range_unlike_its_part_fails_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    backend = big_backend()
    backend.stored["big.bin"] = BIG[:PART] + b"x" * PART + BIG[2 * PART :]  # replaced, same size
    report = pull(backend, FakeS3(backend), tmp_path)
    status, _, error = outcomes(report)["big.bin"]
    assert status == "failed"
    assert "checksum_mismatch" in (error or "")
    assert not (tmp_path / "big.bin").exists()
    assert leftovers(tmp_path) == []


def test_a_whole_object_checksum_is_checked_by_reading_the_file_back(tmp_path: Path) -> None:
    backend = big_backend(checksum=sha(BIG))  # one PUT's SHA-256: no parts to go by
    assert outcomes(pull(backend, FakeS3(backend), tmp_path))["big.bin"][0] == "uploaded"
    assert (tmp_path / "big.bin").read_bytes() == BIG
    backend.checksums["big.bin"] = sha(b"other")
    status, _, error = outcomes(pull(backend, FakeS3(backend), tmp_path / "2"))["big.bin"]
    assert (status, "checksum_mismatch" in (error or "")) == ("failed", True)


def test_a_store_that_ignores_ranges_gets_the_file_fetched_whole(tmp_path: Path) -> None:
    backend = big_backend()
    s3 = FakeS3(backend, ranges=False)
    report = pull(backend, s3, tmp_path)
    assert outcomes(report)["big.bin"][0] == "uploaded"
    assert (tmp_path / "big.bin").read_bytes() == BIG
    whole = [url for url in s3.asked if url.startswith("s3://big.bin") and " " not in url]
    assert len(whole) == 1  # after the ranges were answered with the whole object


def test_another_range_than_asked_for_is_refused(tmp_path: Path) -> None:
    backend = big_backend()
    s3 = FakeS3(backend, content_range=lambda a, b, n: f"bytes 0-{b - a}/{n}")
    status, _, error = outcomes(pull(backend, s3, tmp_path))["big.bin"]
    assert (status, error) == ("failed", "S3 answered another range than was asked for")
    assert not (tmp_path / "big.bin").exists()
    assert leftovers(tmp_path) == []


def test_a_pull_stopped_halfway_leaves_no_file_at_a_final_name(tmp_path: Path) -> None:
    backend = big_backend()
    del backend.stored["a.txt"], backend.stored["b/c.txt"]
    interrupted = threading.Event()

    def ctrl_c() -> None:  # as SIGINT would, while the ranges are on their way
        if not interrupted.is_set():
            interrupted.set()
            _thread.interrupt_main()
        time.sleep(0.3)

    root = tmp_path / "out"
    root.mkdir()
    puller = Puller(
        cast(BackendClient, backend),
        PullOptions(run_id="r1", concurrency=2),
        SilentReporter(),
        cast(Connections, FakeS3(backend, during=ctrl_c)),
    )
    listed = [StoredFile("big.bin", len(BIG), "e")]
    with pytest.raises(KeyboardInterrupt):
        puller.pull(listed, root, count=1, total_bytes=len(BIG))
    assert list(root.rglob("*")) == []
    assert puller.report.files == []
    assert puller.report.notices == ["stopped: interrupted"]


def test_a_store_that_stopped_answering_fails_the_rest_at_once(tmp_path: Path) -> None:
    backend = FakeBackend()
    backend.stored = {f"f{n:02}.txt": b"x" for n in range(30)}
    backend.checksums = {name: sha(b"x") for name in backend.stored}
    asked = []

    class Down:
        def fetch(self, url: str, *args: Any) -> Response:
            asked.append(url)
            raise ConnectionRefusedError(111, "Connection refused")

    puller = Puller(
        cast(BackendClient, backend),
        PullOptions(run_id="r1", concurrency=2),
        SilentReporter(),
        cast(Connections, Down()),
    )
    listed = [StoredFile(name, 1, "e") for name in backend.stored]
    report = puller.pull(listed, tmp_path, count=30, total_bytes=30)
    assert report.count("failed") == 30
    errors = [f.error or "" for f in report.files]
    assert sum("stopped answering" in error for error in errors) >= 20
    assert len(asked) <= 6 * 5  # the files tried before it was known, each 5 attempts
    assert list(tmp_path.glob("*f*")) == []


def test_small_files_are_signed_without_a_head_and_checked_by_the_gets_answer(
    tmp_path: Path,
) -> None:
    backend = FakeBackend()
    backend.stored["a.txt"] = b"ALPHA\n" * 100  # changed in the store, same size
    report = pull(backend, FakeS3(backend), tmp_path)
    assert backend.looked_up == []  # no HEAD: the GETs said what is stored
    assert outcomes(report)["b/c.txt"] == ("uploaded", 1, None)
    assert "checksum_mismatch" in (outcomes(report)["a.txt"][2] or "")
    assert {f.file_name: f.sha256 for f in report.files}["b/c.txt"] == sha(DATA["b/c.txt"])


def test_a_store_that_names_no_checksum_on_a_get_is_asked_through_the_backend(
    tmp_path: Path,
) -> None:
    backend = FakeBackend()
    report = pull(backend, FakeS3(backend, checksums=False), tmp_path)
    assert sorted(backend.looked_up) == ["a.txt", "b/c.txt"]  # after each GET, once
    assert report.count("uploaded") == 2
    assert (tmp_path / "a.txt").read_bytes() == DATA["a.txt"]


def test_a_file_that_cannot_be_written_fails_at_once_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk is not the store's fault: the file fails with the reason, once (no
    retries, no "the store stopped answering"), and the others still come."""
    backend = FakeBackend()
    s3 = FakeS3(backend)
    real = Landing.write

    def full(self: Landing, offset: int, data: Any) -> None:
        if self.final.name == "a.txt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, offset, data)

    monkeypatch.setattr(Landing, "write", full)
    report = pull(backend, s3, tmp_path)
    status, attempts, error = outcomes(report)["a.txt"]
    assert (status, attempts) == ("failed", 1)
    assert "No space left on device" in (error or "")
    assert len([url for url in s3.asked if "a.txt" in url]) == 1
    assert outcomes(report)["b/c.txt"][0] == "uploaded"
    assert leftovers(tmp_path) == []
