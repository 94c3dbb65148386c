"""The pull engine against a fake backend and a fake S3: retries, a URL signed again
after it expired, a refusal that is not retried, and the checks before a file lands."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from s3sign.errors import BackendError
from s3sign.http.connections import Connections
from s3sign.http.wire import Response
from s3sign.protocol import DownloadResult, DownloadsResponse, SignedUpload, StoredFile
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.pull import Puller, PullOptions
from s3sign.transfer.report import PushReport, SilentReporter

DATA = {"a.txt": b"alpha\n" * 100, "b/c.txt": b"see\n"}


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass
class FakeBackend:
    signed: list[str] = field(default_factory=list)
    stored: dict[str, bytes] = field(default_factory=lambda: dict(DATA))

    def info(self) -> Any:
        raise BackendError("no info")

    def downloads(self, run_id: str, names: list[str]) -> DownloadsResponse:
        self.signed.extend(names)
        return DownloadsResponse(
            [
                DownloadResult(
                    name,
                    "ready",
                    f"runs/{run_id}/{name}",
                    SignedUpload(
                        "GET", f"s3://{name}#{len(self.signed)}", {}, "2099-01-01T00:00:00Z"
                    ),
                    size=len(DATA[name]),
                    etag="e",
                    sha256=sha(DATA[name]),
                )
                for name in names
            ]
        )


@dataclass
class FakeS3:
    """Serves the backend's stored bytes; ``script``: per name, answers to give first."""

    backend: FakeBackend
    script: dict[str, list[int]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def fetch(self, url: str, headers: Any, sink: Callable[[bytes], None], limit: int) -> Response:
        name = url.removeprefix("s3://").split("#")[0]
        self.asked.append(url)
        answers = self.script.get(name, [])
        if answers:
            status = answers.pop(0)
            message = b"Request has expired" if status == 403 else b"Slow down"
            return Response(
                status, {}, b"<Error><Code>X</Code><Message>" + message + b"</Message></Error>"
            )
        sink(self.backend.stored[name])
        return Response(200, {}, b"")

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("s3sign.transfer.pull.backoff", lambda attempt: 0.0)


def pull(backend: FakeBackend, s3: FakeS3, root: Path) -> PushReport:
    puller = Puller(
        cast(BackendClient, backend),
        PullOptions(run_id="r1", concurrency=2),
        SilentReporter(),
        cast(Connections, s3),
    )
    listed = [StoredFile(name, len(data), "e") for name, data in DATA.items()]
    return puller.pull(listed, root, count=len(listed), total_bytes=sum(map(len, DATA.values())))


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
    assert (status, attempts) == ("failed", 0)
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
