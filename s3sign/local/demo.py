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
from s3sign.server.tokens import mint_token
from s3sign.signing.presign import SignRequest
from s3sign.transfer.backend import BackendClient
from s3sign.transfer.files import expand_paths
from s3sign.transfer.push import Pusher, PushOptions
from s3sign.transfer.report import PushReport, Reporter

MiB = 1024 * 1024
DEMO_RUN = "demo-run-1"


@dataclass
class DemoReport:
    """What the demo did and whether every object came back identical."""

    push: PushReport
    verified: list[tuple[str, int, bool]] = field(default_factory=list)  # name, size, identical
    backend_body_bytes: int = 0
    endpoint_url: str = ""
    backend_url: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.push.status == "success"
            and bool(self.verified)
            and all(same for _, _, same in self.verified)
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
            report.backend_body_bytes = app.state.counters.body_bytes
            say("downloading every object through a pre-signed GET to compare SHA-256 ...")
            presigner = store.presigner()
            http = Connections(Transport(), "s3", 60.0)
            for outcome in pushed.files:
                if outcome.key is None:
                    continue
                url = presigner.sign(SignRequest(store.bucket, outcome.key, method="GET")).url
                same = _same(http, url, outcome.size, artifacts / outcome.file_name)
                report.verified.append((outcome.file_name, outcome.size, same))
            http.close()
    return report


def _same(http: Connections, url: str, size: int, path: Path) -> bool:
    """Are the object's bytes (a pre-signed GET, hashed as they arrive) the file's?"""
    remote = hashlib.sha256()
    try:
        if http.fetch(url, {}, remote.update, size).status != 200:
            return False
    except OSError:  # more bytes than pushed, or the store failed: not the same either way
        return False
    with path.open("rb") as handle:
        local = hashlib.file_digest(handle, "sha256")
    return remote.digest() == local.digest()
