"""The whole round trip on one machine: embedded S3, the backend, a push, a check.

``run_demo`` starts SeaweedFS and ``s3sign serve``'s app (in this process, on
free 127.0.0.1 ports), writes sample artifacts, pushes them with a run token,
downloads every object through a pre-signed GET and compares SHA-256, and
reports what happened, including how many bytes the backend received.
Everything it started is stopped, and its files removed, when it returns.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s3sign.config import Settings
from s3sign.errors import UnreachableError
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.local.seaweed import LocalS3, free_ports
from s3sign.server.tokens import mint_link, mint_token
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import expand_paths
from s3sign.transfer.push import Pusher, PushOptions
from s3sign.transfer.report import PushReport, Reporter, SilentReporter

MiB = 1024 * 1024
LINKED = "logs/log_12345.json"  # the file the demo opens through a stable link
DEMO_RUN = "demo-run-1"


@dataclass
class DemoReport:
    """What the demo did and whether every object came back identical."""

    push: PushReport
    verified: list[tuple[str, int, bool]] = field(default_factory=list)  # name, size, identical
    pulled: PushReport | None = None  # the run pulled back into a second folder
    link_ok: bool = False  # a stable link served a file's bytes
    backend_body_bytes: int = 0
    endpoint_url: str = ""
    backend_url: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.push.status == "success"
            and bool(self.verified)
            and all(same for _, _, same in self.verified)
            and self.link_ok
        )


def local_settings(store: LocalS3, **overrides: Any) -> Settings:
    """Backend settings for the embedded store."""
    return Settings(
        bucket=store.bucket,
        endpoint_url=store.endpoint_url,
        region=store.region,
        addressing="path",
        **overrides,
    )


@contextmanager
def background_backend(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on a free 127.0.0.1 port; its URL."""
    import uvicorn

    port = free_ports(1)[0]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="s3sign-demo-backend", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise UnreachableError("the demo backend did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def write_samples(root: Path) -> list[str]:
    """A build's worth of artifacts: a log, step files, a report, a file big enough for parts."""
    samples = {
        "logs/log_12345.json": b'{"build": 12345, "status": "green"}\n' * 2000,
        "steps/step_file_1.json": b'{"step": 1, "ok": true}\n' * 500,
        "steps/step_file_2.json": b'{"step": 2, "ok": true}\n' * 700,
        "reports/junit.xml": b'<testsuite tests="3" failures="0"/>\n',
        "empty.txt": b"",
    }
    for name, data in samples.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    big = root / "traces" / "trace.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("wb") as handle:
        for _ in range(24):
            handle.write(os.urandom(MiB))
    return [*samples, "traces/trace.bin"]


def run_demo(workdir: Path, reporter: Reporter, say: Callable[[str], None]) -> DemoReport:
    """The round trip in ``workdir`` (which must be empty and is left with the store's files)."""
    from s3sign.server.app import create_app
    from s3sign.server.signer import UploadSigner

    store = LocalS3(workdir / "store", bucket="s3sign-demo")
    say("starting an embedded S3 (SeaweedFS) on 127.0.0.1 ...")
    with store:
        # A small multipart threshold, so that the 24 MiB trace goes up in parts.
        settings = local_settings(store, multipart_threshold=8 * MiB, part_size=5 * MiB)
        signer = UploadSigner(settings, store.presigner(), store.object_store())
        secret = secrets.token_bytes(48)
        app = create_app(settings, secret=secret, signer=signer)
        with background_backend(app) as backend_url:
            say(f"S3 at {store.endpoint_url}, backend at {backend_url} (bucket {store.bucket})")
            artifacts = workdir / "artifacts"
            names = write_samples(artifacts)
            token, _ = mint_token(DEMO_RUN, 900, secret)
            say(f"minted a token for run {DEMO_RUN}; pushing {len(names)} artifacts ...")
            files = list(expand_paths([str(artifacts)], artifacts).files)
            # Everything here is on 127.0.0.1: reached directly, whatever proxies are set.
            client = BackendClient(backend_url, token, transport=Transport())
            options = PushOptions(run_id=DEMO_RUN, transport=Transport())
            try:
                pushed = Pusher(client, options, reporter).push(files)
            finally:
                client.close()
            report = DemoReport(
                push=pushed, endpoint_url=store.endpoint_url, backend_url=backend_url
            )
            report.backend_body_bytes = app.state.metrics.value("s3sign_request_body_bytes_total")
            pulled = workdir / "pulled"
            say(
                f"pulling the run back into {pulled.name}/ with a read token, each file checked ..."
            )
            report.pulled = _pull_back(backend_url, secret, pulled, len(names))
            for outcome in report.pulled.files:
                local, back = artifacts / outcome.file_name, pulled / outcome.file_name
                same = outcome.status == "uploaded" and _same_file(local, back)
                report.verified.append((outcome.file_name, outcome.size, same))
            link, _ = mint_link(DEMO_RUN, LINKED, 3600, secret)
            report.link_ok = _link_serves(
                f"{backend_url}/v1/runs/{DEMO_RUN}/files/{LINKED}?token={link}", artifacts / LINKED
            )
    return report


def _pull_back(backend_url: str, secret: bytes, into: Path, count: int) -> PushReport:
    """Pull the demo run into ``into`` as a worker would: a read token, then ``Puller``."""
    from s3sign.transfer.listing import stored_files
    from s3sign.transfer.pull import Puller, PullOptions

    token, _ = mint_token(DEMO_RUN, 900, secret, scopes=("read",))
    client = BackendClient(backend_url, token, transport=Transport())
    try:
        files = list(stored_files(client, DEMO_RUN))
        options = PullOptions(run_id=DEMO_RUN, transport=Transport())
        into.mkdir()
        puller = Puller(client, options, SilentReporter())
        return puller.pull(files, into, count=count, total_bytes=sum(f.size for f in files))
    finally:
        client.close()


def _link_serves(link: str, path: Path) -> bool:
    """Does the stable link redirect to a signed GET that serves the file's bytes?"""
    http = Connections(Transport(), "s3", 60.0)
    try:
        answer = http.request("GET", link, {})
        location = answer.headers.get("location", "")
        if answer.status != 307 or not location:
            return False
        body = bytearray()
        fetched = http.fetch(location, {}, body.extend, path.stat().st_size)
        return fetched.status == 200 and bytes(body) == path.read_bytes()
    except OSError:
        return False
    finally:
        http.close()


def _same_file(one: Path, other: Path) -> bool:
    with one.open("rb") as first, other.open("rb") as second:
        left = hashlib.file_digest(first, "sha256").digest()
        return left == hashlib.file_digest(second, "sha256").digest()
