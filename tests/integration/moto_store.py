"""moto in server mode on a free 127.0.0.1 port: a second S3-compatible store whose answers
differ from SeaweedFS's (and from AWS's).

Named in the tests where they matter, as measured against moto 5.2:
- it verifies no signature at all, and so no signed length or content type:
  nothing about signing is proven on it;
- it verifies neither ``x-amz-checksum-sha256`` nor ``Content-MD5``, and keeps a
  declared SHA-256 (unchecked) only when ``x-amz-sdk-checksum-algorithm`` is sent too;
- a multipart object's composite checksum is reported without the ``-N`` suffix;
- ETags are the MD5 of the bytes it received; ``If-Match`` on DELETE is honoured.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import requests

from s3sign.children import die_with_parent
from s3sign.credentials import Credentials
from s3sign.local.seaweed import LOCAL_REGION, LocalCredentials, free_ports
from s3sign.signing.presign import Presigner

MEMORY_CAP = 4 * 1024**3  # moto keeps objects in memory: a runaway test cannot take the machine


def _limited() -> None:  # pragma: no cover - runs in the child before exec
    die_with_parent()
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


class MotoS3:
    """Duck-typed like ``LocalS3`` where the fixtures use it: bucket, credentials, region,
    endpoint_url, presigner()."""

    def __init__(self, log: Path, bucket: str = "s3sign-moto") -> None:
        self.bucket = bucket
        self.credentials = LocalCredentials("AKIAMOTOEXAMPLE", "moto-checks-no-secret")
        self.region = LOCAL_REGION
        self.log_path = log
        self._port = free_ports(1)[0]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def presigner(self) -> Presigner:
        credentials = Credentials(self.credentials.access_key, self.credentials.secret_key)
        return Presigner(credentials, self.region, self.endpoint_url, "path")

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self._port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_limited,  # noqa: PLW1509 - gone if this run is killed
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                # moto checks no signature: an unsigned PUT creates the bucket
                if requests.put(f"{self.endpoint_url}/{self.bucket}", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto did not start: {self.log_path.read_text()[-500:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
