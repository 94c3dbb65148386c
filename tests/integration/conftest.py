"""A real SeaweedFS on free 127.0.0.1 ports for the whole session, stopped at the end."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from s3sign.children import die_with_parent, stop_child
from s3sign.local.seaweed import LocalS3, free_ports
from s3sign.server.tokens import mint_token
from tests.integration.faults import Faults, FaultyProxy
from tests.integration.moto_store import MotoS3

Store = LocalS3 | MotoS3  # the two S3-compatible stores the tests run against


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    store = LocalS3(tmp_path_factory.mktemp("seaweedfs"), bucket="s3sign-test")
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """moto in server mode: a store that checks no signature or checksum (see moto_store)."""
    store = MotoS3(tmp_path_factory.mktemp("moto") / "moto.log")
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def s3_env(local_s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> LocalS3:
    """The environment a user of the local store would have: its keys, region and endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_s3.credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", local_s3.credentials.secret_key)
    monkeypatch.setenv("AWS_REGION", local_s3.region)
    monkeypatch.setenv("S3SIGN_ENDPOINT_URL", local_s3.endpoint_url)
    return local_s3


SECRET = "integration-test-secret-" + "x" * 24


@dataclass(frozen=True)
class Backend:
    """A running ``s3sign serve`` process."""

    url: str
    store: Store
    process: subprocess.Popen[bytes]
    log: Path

    def token(self, run_id: str, ttl: int = 3600) -> str:
        """A token for ``run_id``, minted here (the ``token`` command has tests of its own:
        tests/cli/test_sign_cli.py, tests/integration/test_demo_and_local.py)."""
        return mint_token(run_id, ttl, SECRET.encode())[0]

    def post(self, path: str, body: object, token: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=60)

    def body_bytes_received(self) -> int:
        return self.metric("s3sign_request_body_bytes_total")

    def metric(self, name: str) -> int:
        """The sum of the samples of ``name`` (all its labels), over every worker."""
        return metric(requests.get(f"{self.url}/metrics", timeout=10).text, name)


def metric(text: str, name: str) -> int:
    """The sum of the samples of ``name`` in a Prometheus text answer."""
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return int(sum(float(value) for sample, value in samples if sample.split("{")[0] == name))


@contextmanager
def running_backend(
    store: Store,
    log: Path,
    endpoint_url: str | None = None,
    port: int | None = None,
    environ: Mapping[str, str] | None = None,
    address_space: int | None = None,
    **settings: str,
) -> Iterator[Backend]:
    """``s3sign serve`` as a real process on a (free) port; ``settings`` become S3SIGN_* vars,
    ``environ`` more variables (a CA bundle, proxies); ``address_space`` caps its memory
    (bytes), for a test that may make it run away."""

    def start() -> None:  # pragma: no cover - runs in the child before exec
        die_with_parent()
        if address_space:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    port = port or free_ports(1)[0]
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "S3SIGN_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID=store.credentials.access_key,
        AWS_SECRET_ACCESS_KEY=store.credentials.secret_key,
        AWS_REGION=store.region,
        AWS_EC2_METADATA_DISABLED="true",
        S3SIGN_ENDPOINT_URL=endpoint_url or store.endpoint_url,
        S3SIGN_SERVER_SECRET=SECRET,
    )
    env.update({f"S3SIGN_{key.upper()}": value for key, value in settings.items()})
    env.update(environ or {})
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "s3sign",
                "serve",
                "--bucket",
                store.bucket,
                "--port",
                str(port),
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=start,  # noqa: PLW1509 - gone if this run is killed
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"s3sign serve did not start: {log.read_text()}")
        time.sleep(0.1)
    try:
        yield Backend(url, store, process, log)
    finally:
        stop_child(process, 15)


@pytest.fixture(scope="session")
def small_parts(local_s3: LocalS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The real ``s3sign serve`` against the local store, with multipart from 5 MiB (parts
    of 5 MiB): one process for every test that needs small parts."""
    log = tmp_path_factory.mktemp("serve-small-parts") / "serve.log"
    with running_backend(local_s3, log, multipart_threshold="5MiB", part_size="5MiB") as running:
        yield running


@pytest.fixture(scope="session")
def backend(local_s3: LocalS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """The real ``s3sign serve`` process on a free 127.0.0.1 port, against the local store."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running_backend(local_s3, log, max_file_size="1GiB") as running:
        yield running


@pytest.fixture(scope="session", params=["seaweedfs", "moto"])
def any_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The real ``s3sign serve`` in front of each store in turn (SeaweedFS, then moto), with
    multipart from 5 MiB: for the cases whose outcome depends on what the store answers."""
    fixture = "local_s3" if request.param == "seaweedfs" else "moto_s3"
    store: Store = request.getfixturevalue(fixture)
    log = tmp_path_factory.mktemp(f"serve-{request.param}") / "serve.log"
    with running_backend(store, log, multipart_threshold="5MiB", part_size="5MiB") as running:
        yield running


@contextmanager
def behind_faults(store: Store, faults: Faults, tmp_path: Path) -> Iterator[Backend]:
    """A backend whose signed URLs (and its own calls to S3) go through the faulty proxy;
    multipart from 5 MiB, so that a small tree has parts too."""
    with (
        FaultyProxy(store.endpoint_url, faults) as proxy,
        running_backend(
            store,
            tmp_path / "serve.log",
            endpoint_url=proxy.url,
            multipart_threshold="5MiB",
            part_size="5MiB",
        ) as backend,
    ):
        yield backend
