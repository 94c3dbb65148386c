"""The push engine against a fake backend and fake connections to S3: retries, re-signing,
multipart, skip-existing, the circuit breaker and Ctrl-C, each in milliseconds. The
integration tests (tests/integration/test_push.py) prove the same wiring against SeaweedFS
and the real ``serve``; these pin every branch down without them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from s3sign.errors import BackendError
from s3sign.http.connections import Connections
from s3sign.http.wire import Response
from s3sign.protocol import (
    AbortResponse,
    CompleteFile,
    CompleteResponse,
    CompleteResult,
    CreateUploadsResponse,
    FileResult,
    FileSpec,
    MultipartPlan,
    PartsResponse,
    ServerInfo,
    SignedPart,
    SignedUpload,
    StatusFile,
    StatusResponse,
    StatusResult,
    StoreChecks,
)
from s3sign.s3limits import MiB, plan_parts
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import LocalFile
from s3sign.transfer.jobs import STORE_DOWN
from s3sign.transfer.push import PENDING_COMPLETIONS, Pusher, PushOptions
from s3sign.transfer.report import PushReport, SilentReporter

RUN = "run-1"
LATER = "2099-01-01T00:00:00Z"
COUNT = 5_000


@dataclass(frozen=True)
class Held:
    """An answer that waits for ``gate`` (then is 200): one upload held in flight."""

    gate: threading.Event


@dataclass
class FakeS3:
    """Answers PUTs to ``s3://KEY?part=N`` URLs from a script: per URL, a list of answers to
    give in turn (``status``, or an exception to raise), then 200."""

    script: dict[str, list[int | BaseException | Held]] = field(default_factory=dict)
    stored: dict[str, bytes] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(
        self,
        method: str,
        url: str,
        headers: Any,
        body: BinaryIO,
        offset: int,
        length: int,
        on_sent: Callable[[int], None],
    ) -> Response:
        with self.lock:
            self.sent.append(url)
            answers = self.script.get(url, [])
            answer = answers.pop(0) if answers else 200
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Held):
            answer.gate.wait(10)
        elif answer != 200:
            body_xml = b"<Error><Code>Oops</Code><Message>no</Message></Error>"
            if answer == 403:
                body_xml = (
                    b"<Error><Code>AccessDenied</Code>"
                    b"<Message>Request has expired</Message></Error>"
                )
            return Response(answer, {}, body_xml)
        body.seek(offset)
        data = body.read(length)
        on_sent(len(data))
        with self.lock:
            self.stored[url] = data
        return Response(200, {"etag": f'"etag-{url}"'}, b"")

    def close(self) -> None:
        pass


@dataclass
class FakeBackend:
    """The protocol's answers, worked out here: keys are ``runs/RUN/NAME``, files above the
    threshold go multipart, ``complete`` believes what it is told."""

    threshold: int = 100 * MiB
    part_size: int = 5 * MiB
    same: set[str] = field(default_factory=set)  # names the store holds already
    created: list[str] = field(default_factory=list)
    aborted: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    completed: list[CompleteFile] = field(default_factory=list)
    on_create: Callable[[list[FileSpec]], None] | None = None
    clock_offset: timedelta = timedelta(0)

    def info(self) -> ServerInfo:
        store = StoreChecks(sha256=True, md5=True, size=True)
        return ServerInfo(1, "runs", 10 * 1024**3, 500, self.threshold, self.part_size, store)

    def create_uploads(self, run_id: str, files: Sequence[FileSpec]) -> CreateUploadsResponse:
        if self.on_create is not None:
            self.on_create(list(files))
        results = []
        for spec in files:
            self.created.append(spec.file_name)
            key = f"runs/{run_id}/{spec.file_name}"
            if spec.file_size > self.threshold:
                size, count = plan_parts(spec.file_size, self.part_size)
                plan = MultipartPlan(f"up-{key}", size, count, spec.part_checksum)
                results.append(FileResult(spec.file_name, "ready", key, multipart=plan))
            else:
                upload = SignedUpload("PUT", f"s3://{key}", {}, LATER)
                results.append(FileResult(spec.file_name, "ready", key, upload=upload))
        return CreateUploadsResponse(results)

    def sign_parts(
        self,
        run_id: str,
        key: str,
        upload_id: str,
        file_size: int,
        part_numbers: list[int],
        sha256: list[str] | None = None,
        md5: list[str] | None = None,
    ) -> PartsResponse:
        return PartsResponse(
            [SignedPart(n, "PUT", f"s3://{key}?part={n}", {}, LATER) for n in part_numbers]
        )

    def complete(self, run_id: str, files: Sequence[CompleteFile]) -> CompleteResponse:
        self.completed.extend(files)
        return CompleteResponse(
            [CompleteResult(f.key, "complete", f.file_size, f"done-{f.key}") for f in files]
        )

    def status(self, run_id: str, files: Sequence[StatusFile]) -> StatusResponse:
        return StatusResponse(
            [
                StatusResult(
                    f.file_name,
                    "same" if f.file_name in self.same else "missing",
                    key=f"runs/{run_id}/{f.file_name}",
                    etag="stored",
                )
                for f in files
            ]
        )

    def abort(
        self, run_id: str, key: str, upload_id: str | None = None, etag: str | None = None
    ) -> AbortResponse:
        self.aborted.append((key, upload_id, etag))
        return AbortResponse(key, "aborted")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("s3sign.transfer.upload.backoff", lambda attempt: 0.0)
    monkeypatch.setattr("s3sign.transfer.verify.backoff", lambda attempt: 0.0)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_bytes(b"hello, world\n")
    return path


def files_like(path: Path, count: int, prefix: str = "f") -> list[LocalFile]:
    """``count`` files to push, all read from ``path`` (the engine only reads the bytes)."""
    info = path.stat()
    return [
        LocalFile(str(path), f"{prefix}{i:06}.txt", info.st_size, info.st_mtime_ns)
        for i in range(count)
    ]


def push(
    backend: FakeBackend,
    s3: FakeS3,
    files: Any,
    **options: Any,
) -> tuple[PushReport, Pusher]:
    pusher = Pusher(
        cast(BackendClient, backend),
        PushOptions(run_id=RUN, **options),
        SilentReporter(),
        cast(Connections, s3),
    )
    return pusher.push(files), pusher


def outcomes(report: PushReport) -> dict[str, tuple[str, int, str | None]]:
    return {f.file_name: (f.status, f.attempts, f.error) for f in report.files}


def test_a_transient_answer_is_retried_and_a_refusal_is_not(small: Path) -> None:
    s3 = FakeS3({"s3://runs/run-1/f000000.txt": [503, 500], "s3://runs/run-1/f000001.txt": [400]})
    report, _ = push(FakeBackend(), s3, files_like(small, 3))
    assert outcomes(report) == {
        "f000000.txt": ("uploaded", 3, None),
        "f000001.txt": ("failed", 1, "S3 refused the upload: 400 Oops no"),
        "f000002.txt": ("uploaded", 1, None),
    }
    assert report.status == "partial"
    assert report.retries == 2


def test_an_expired_url_is_signed_again_and_is_not_an_attempt(small: Path) -> None:
    backend = FakeBackend()
    s3 = FakeS3({"s3://runs/run-1/f000000.txt": [403]})
    report, _ = push(backend, s3, files_like(small, 1))
    assert outcomes(report) == {"f000000.txt": ("uploaded", 1, None)}
    assert backend.created == ["f000000.txt", "f000000.txt"]  # asked for again


def test_a_multipart_file_uploads_its_parts_and_completes_them_in_order(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (11 * MiB // 256))  # 11 MiB: 3 parts of 5 MiB
    backend = FakeBackend(threshold=6 * MiB)
    s3 = FakeS3({"s3://runs/run-1/big.bin?part=2": [503]})
    local = LocalFile(str(big), "big.bin", big.stat().st_size, big.stat().st_mtime_ns)
    report, _ = push(backend, s3, [local])
    assert outcomes(report) == {"big.bin": ("uploaded", 2, None)}
    [done] = backend.completed
    assert done.upload_id == "up-runs/run-1/big.bin"
    assert [(p.part_number, p.etag) for p in done.parts or []] == [
        (n, f"etag-s3://runs/run-1/big.bin?part={n}") for n in (1, 2, 3)
    ]
    assert all(p.sha256 for p in done.parts or [])  # each part bound to its SHA-256
    whole = b"".join(s3.stored[f"s3://runs/run-1/big.bin?part={n}"] for n in (1, 2, 3))
    assert whole == big.read_bytes()
    assert backend.aborted == []


def test_skip_existing_uploads_only_what_differs(small: Path) -> None:
    backend = FakeBackend(same={"f000001.txt"})
    s3 = FakeS3()
    report, _ = push(backend, s3, files_like(small, 3), skip_existing=True)
    assert outcomes(report)["f000001.txt"] == ("skipped", 0, None)
    assert report.count("uploaded") == 2
    assert "s3://runs/run-1/f000001.txt" not in s3.sent
    assert "f000001.txt" not in backend.created


def test_the_circuit_breaker_fails_the_rest_at_once_when_s3_stops_answering(
    small: Path,
) -> None:
    """No answer at all for every upload: after a few files in a row, the rest fail at
    once (not each through its five attempts)."""
    files = files_like(small, 40)
    s3 = FakeS3({f"s3://runs/run-1/{f.name}": [OSError("refused")] * 10 for f in files})
    report, pusher = push(FakeBackend(), s3, files, concurrency=2)
    assert report.count("failed") == 40
    assert pusher.uploader.health.down
    assert report.failures[STORE_DOWN].count >= 30
    assert len(s3.sent) <= 5 * 4 + 2 * 5  # the first few files' attempts, no more


def test_ctrl_c_aborts_open_uploads_and_reports_what_was_under_way(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (7 * MiB))
    small = tmp_path / "small.txt"
    small.write_bytes(b"s")
    first = LocalFile(str(big), "big.bin", big.stat().st_size, big.stat().st_mtime_ns)
    rest = files_like(small, 200)
    asked = [0]

    def interrupt_later(specs: list[FileSpec]) -> None:
        asked[0] += 1
        if asked[0] == 2:  # the second batch: Ctrl-C while it is being signed
            raise KeyboardInterrupt

    backend = FakeBackend(threshold=6 * MiB, on_create=interrupt_later)
    gate = threading.Event()
    s3 = FakeS3({"s3://runs/run-1/big.bin?part=1": [Held(gate)]})
    pusher = Pusher(
        cast(BackendClient, backend),
        PushOptions(run_id=RUN, concurrency=2, batch_size=50),
        SilentReporter(),
        cast(Connections, s3),
    )
    with pytest.raises(KeyboardInterrupt):
        pusher.push([first, *rest])
    gate.set()
    report = pusher.report
    assert report is not None
    assert backend.aborted == [("runs/run-1/big.bin", "up-runs/run-1/big.bin", None)]
    assert outcomes(report)["big.bin"][0] == "failed"
    assert outcomes(report)["big.bin"][2] == "interrupted"
    assert report.status in ("partial", "error")
    recorded = report.count("uploaded") + report.count("failed")
    assert recorded + report.not_listed == 201


def test_files_are_taken_as_needed_and_let_go_once_recorded(small: Path) -> None:
    """A listing of 5,000 files: the engine never holds more than a few batches of them,
    and the report keeps counts, not outcomes, when asked not to keep them."""
    taken = [0]
    most_in_flight = [0]
    pusher_box: list[Pusher] = []

    def listing() -> Iterator[LocalFile]:
        info = small.stat()
        for i in range(COUNT):
            taken[0] += 1
            if pusher_box:
                in_flight = len(pusher_box[0]._unrecorded)
                most_in_flight[0] = max(most_in_flight[0], in_flight)
            yield LocalFile(str(small), f"f{i:06}.txt", info.st_size, info.st_mtime_ns)

    pusher = Pusher(
        cast(BackendClient, FakeBackend()),
        PushOptions(run_id=RUN, checksum="none", batch_size=100),
        SilentReporter(),
        cast(Connections, FakeS3()),
    )
    pusher_box.append(pusher)
    seen: list[str] = []
    report = PushReport(RUN, keep_files=False, sink=lambda outcome: seen.append(outcome.status))
    pusher.push(listing(), count=COUNT, total_bytes=COUNT * 13, report=report)
    assert taken[0] == COUNT
    assert report.count("uploaded") == COUNT
    assert report.files == []
    assert len(seen) == COUNT
    # Two batches hashed ahead, one being signed, a few waiting to be verified: not the
    # whole listing (push.py: PENDING_COMPLETIONS).
    assert most_in_flight[0] <= (PENDING_COMPLETIONS + 4) * 100


def test_a_backend_gone_fails_the_batch_with_its_reason(small: Path) -> None:
    def gone(specs: list[FileSpec]) -> None:
        raise BackendError("the backend answered 503 five times")

    report, _ = push(FakeBackend(on_create=gone), FakeS3(), files_like(small, 3))
    assert {error for _, _, error in outcomes(report).values()} == {
        "the backend answered 503 five times"
    }


def test_a_url_that_keeps_expiring_fails_with_a_clock_hint(small: Path) -> None:
    backend = FakeBackend()
    backend.clock_offset = timedelta(days=365 * 100)  # the backend's clock is a century ahead
    report, _ = push(backend, FakeS3(), files_like(small, 1))
    [(status, _, error)] = outcomes(report).values()
    assert status == "failed"
    assert error is not None
    assert "clock" in error


def test_names_that_are_one_key_once_normalised_fail_before_anything_is_sent(
    small: Path,
) -> None:
    info = small.stat()
    nfc, nfd = "caf\u00e9.txt", "cafe\u0301.txt"
    files = [LocalFile(str(small), name, info.st_size, info.st_mtime_ns) for name in (nfc, nfd)]
    s3 = FakeS3()
    report, _ = push(FakeBackend(), s3, [*files, *files_like(small, 1)])
    assert [o.status for o in report.files if o.file_name in (nfc, nfd)] == ["failed"] * 2
    assert all("same key once Unicode-normalised" in (o.error or "") for o in report.files[:2])
    assert s3.sent == ["s3://runs/run-1/f000000.txt"]
