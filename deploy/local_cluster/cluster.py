"""A local cluster from real parts, on 127.0.0.1 only: the topology docs/deploy.md
describes for production, on one machine.

- SeaweedFS as separate processes: a master (every volume kept on two volume servers,
  replication ``001``), three volume servers (so one may fail), a filer, two S3 gateways;
- three ``s3sign serve`` replicas sharing one secret, configured by
  deploy/local_cluster/s3sign.yaml;
- HAProxy (the operating system's package) in front of the replicas and in front of the
  gateways, with health checks (deploy/local_cluster/haproxy.cfg).

By hand::

    python -m deploy.local_cluster.cluster [--dir DIR] [--replicas N]

prints the endpoints and a token command, and runs until Ctrl-C or SIGTERM. Every process
it starts runs with the kernel told to kill it if this one dies (``die_with_parent``), so
nothing is left behind even when it is killed with SIGKILL; a normal stop sends SIGTERM,
then SIGKILL after 10 s. The tests (tests/cluster/) drive it through ``Cluster``: kill a
part, start it again, read its endpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from s3sign.children import die_with_parent, stop_child
from s3sign.credentials import Credentials
from s3sign.http.connections import Connections
from s3sign.http.transport import Transport
from s3sign.local.seaweed import (
    LocalCredentials,
    find_weed,
    free_ports,
    identity_config,
    server_secret_file,
)
from s3sign.signing.presign import Presigner
from s3sign.signing.store import ObjectStore

HERE = Path(__file__).resolve().parent
HAPROXY_CONFIG = HERE / "haproxy.cfg"
S3SIGN_CONFIG = HERE / "s3sign.yaml"
REGION = "us-east-1"
VOLUME_SERVERS = 3
GATEWAYS = 2
MAX_REPLICAS = 3  # servers haproxy.cfg names
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def _answers(url: str, status: int = 200) -> Callable[[], bool]:
    """A readiness check: ``GET url`` answers ``status``."""

    def check() -> bool:
        http = Connections(Transport(), "backend", 2.0)
        try:
            return http.request("GET", url, {}).status == status
        except OSError:
            return False
        finally:
            http.close()

    return check


@dataclass
class Part:
    """One process of the cluster: how to start it, and how to tell it is ready."""

    name: str
    args: list[str]
    ready: Callable[[], bool]
    log: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process. Call from a thread that lives as long as it: the kernel's
        parent-death signal follows the thread that started a child, not the process."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(  # noqa: S603 - our own argument list
                self.args,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the script, which stops them in order
                preexec_fn=die_with_parent,  # noqa: PLW1509 - gone if the script is killed
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.running:
                raise RuntimeError(f"{self.name} exited while starting: {self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready within {timeout:.0f}s: {self.tail()}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.process is not None and self.running:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT`` seconds."""
        if self.process is not None:
            stop_child(self.process, STOP_TIMEOUT)

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])


class Cluster:
    """The whole cluster under ``root`` (data and logs), on free 127.0.0.1 ports."""

    def __init__(
        self,
        root: Path,
        replicas: int = MAX_REPLICAS,
        bucket: str = "artifacts",
        settings: dict[str, str] | None = None,
    ) -> None:
        if not 1 <= replicas <= MAX_REPLICAS:
            raise ValueError(f"1 to {MAX_REPLICAS} replicas (haproxy.cfg names {MAX_REPLICAS})")
        self.root, self.bucket, self.replicas = root, bucket, replicas
        self.credentials = LocalCredentials.generate()
        self.secret_file = server_secret_file(root)  # mode 0600: the secret is never printed
        self.secret = self.secret_file.read_text(encoding="utf-8").strip()
        ports = iter(free_ports(4 + 2 * VOLUME_SERVERS + 2 * GATEWAYS + 2 + MAX_REPLICAS))
        master, master_grpc, filer, filer_grpc = (next(ports) for _ in range(4))
        self.master = f"127.0.0.1:{master}.{master_grpc}"  # SeaweedFS's host:port.grpcPort
        self.master_url = f"http://127.0.0.1:{master}"
        self.filer = f"127.0.0.1:{filer}.{filer_grpc}"
        volumes = [(next(ports), next(ports)) for _ in range(VOLUME_SERVERS)]
        gateways = [(next(ports), next(ports)) for _ in range(GATEWAYS)]
        s3_port, backend_port = next(ports), next(ports)
        self.replica_ports = [next(ports) for _ in range(MAX_REPLICAS)]
        self.s3_url = f"http://127.0.0.1:{s3_port}"
        self.backend_url = f"http://127.0.0.1:{backend_port}"
        self.gateway_urls = [f"http://127.0.0.1:{port}" for port, _ in gateways]
        self.replica_urls = [f"http://127.0.0.1:{port}" for port in self.replica_ports]
        self.parts: dict[str, Part] = {}
        self._weed = str(find_weed())
        self._add_store(master, master_grpc, volumes, filer, filer_grpc, gateways)
        self._add_balancer(s3_port, backend_port)
        self._add_replicas(settings or {})

    # --- the parts ---------------------------------------------------------------------

    def _weed_part(self, name: str, args: list[str], ready: str) -> None:
        data = self.root / name
        self.parts[name] = Part(
            name, [self._weed, *args], _answers(ready), self.root / f"{name}.log", data
        )

    def _add_store(
        self,
        master: int,
        master_grpc: int,
        volumes: list[tuple[int, int]],
        filer: int,
        filer_grpc: int,
        gateways: list[tuple[int, int]],
    ) -> None:
        local = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        self._weed_part(
            "master",
            [
                "master",
                *local,
                f"-port={master}",
                f"-port.grpc={master_grpc}",
                f"-mdir={self.root / 'master'}",
                "-defaultReplication=001",  # each volume on two volume servers
                "-volumeSizeLimitMB=256",
                "-telemetry=false",
            ],
            f"{self.master_url}/cluster/status",
        )
        for number, (port, grpc) in enumerate(volumes, 1):
            self._weed_part(
                f"volume-{number}",
                [
                    "volume",
                    *local,
                    f"-port={port}",
                    f"-port.grpc={grpc}",
                    f"-dir={self.root / f'volume-{number}'}",
                    f"-mserver={self.master}",
                    "-max=30",
                ],
                f"http://127.0.0.1:{port}/status",
            )
        self._weed_part(
            "filer",
            [
                "filer",
                *local,
                f"-port={filer}",
                f"-port.grpc={filer_grpc}",
                f"-master={self.master}",
                f"-defaultStoreDir={self.root / 'filer'}",
            ],
            f"http://127.0.0.1:{filer}/",
        )
        identities = self.root / "s3-identities.json"
        self._identities = identities
        for number, (port, grpc) in enumerate(gateways, 1):
            self._weed_part(
                f"s3-{number}",
                [
                    "s3",
                    "-ip.bind=127.0.0.1",
                    f"-port={port}",
                    f"-port.grpc={grpc}",
                    f"-filer={self.filer}",
                    f"-config={identities}",
                    "-port.iceberg=0",
                    "-port.lance=0",
                ],
                f"http://127.0.0.1:{port}/status",
            )

    def _add_balancer(self, s3_port: int, backend_port: int) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        env = {
            "S3SIGN_LISTEN": f"127.0.0.1:{backend_port}",
            "S3_LISTEN": f"127.0.0.1:{s3_port}",
            **{
                f"S3_GATEWAY_{n}": url.removeprefix("http://")
                for n, url in enumerate(self.gateway_urls, 1)
            },
            **{
                f"S3SIGN_REPLICA_{n}": f"127.0.0.1:{port}"
                for n, port in enumerate(self.replica_ports, 1)
            },
        }
        self.parts["haproxy"] = Part(
            "haproxy",
            [haproxy, "-db", "-f", str(HAPROXY_CONFIG)],
            _answers(f"{self.s3_url}/status"),
            self.root / "haproxy.log",
            self.root / "haproxy",
            env,
        )

    def _add_replicas(self, settings: dict[str, str]) -> None:
        env = {
            "AWS_ACCESS_KEY_ID": self.credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_key,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "S3SIGN_CONFIG": str(S3SIGN_CONFIG),
            "S3SIGN_SERVER_SECRET": self.secret,
            "S3SIGN_BUCKET": self.bucket,
            "S3SIGN_ENDPOINT_URL": self.s3_url,  # workers upload through the balancer
            **{f"S3SIGN_{key.upper()}": value for key, value in settings.items()},
        }
        for number, port in enumerate(self.replica_ports, 1):
            name = f"s3sign-{number}"
            self.parts[name] = Part(
                name,
                [
                    sys.executable,
                    "-m",
                    "s3sign",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                _answers(f"http://127.0.0.1:{port}/readyz"),
                self.root / f"{name}.log",
                self.root / name,
                env,
            )

    # --- running it --------------------------------------------------------------------

    def start(self) -> None:
        """Every part, in order, each waited for; the bucket; then the balancer sees all."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._identities.touch(mode=0o600)
        self._identities.write_text(json.dumps(identity_config(self.credentials)))
        try:
            self._start_and_wait(["master"])
            self._start_and_wait([f"volume-{n}" for n in range(1, VOLUME_SERVERS + 1)])
            self._wait_volume_servers(VOLUME_SERVERS)
            self._start_and_wait(["filer"])
            self._start_and_wait([f"s3-{n}" for n in range(1, GATEWAYS + 1)])
            self._create_bucket()
            self._start_and_wait(["haproxy"])
            self._start_and_wait([f"s3sign-{n}" for n in range(1, self.replicas + 1)])
            self.wait_balanced()
        except BaseException:
            self.stop()
            raise

    def _start_and_wait(self, names: list[str]) -> None:
        for name in names:
            self.parts[name].start()
        for name in names:
            self.parts[name].wait_ready()

    def _wait_volume_servers(self, count: int, timeout: float = START_TIMEOUT) -> None:
        """Until the master knows ``count`` volume servers (a write needs two)."""
        url = f"{self.master_url}/dir/status"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            http = Connections(Transport(), "backend", 2.0)
            try:
                answer = http.request("GET", url, {})
                if answer.data.count(b'"Url"') >= count:
                    return
            except OSError:
                pass
            finally:
                http.close()
            time.sleep(0.2)
        raise RuntimeError(f"the master did not see {count} volume servers")

    def _create_bucket(self) -> None:
        script = f"s3.bucket.create -name {self.bucket}\nexit\n"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            done = subprocess.run(  # noqa: S603 - our own argument list
                [self._weed, "shell", f"-master={self.master}"],
                input=script.encode(),
                capture_output=True,
                timeout=60,
                check=False,
            )
            listed = subprocess.run(  # noqa: S603
                [self._weed, "shell", f"-master={self.master}"],
                input=b"s3.bucket.list\nexit\n",
                capture_output=True,
                timeout=60,
                check=False,
            )
            if self.bucket.encode() in listed.stdout:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot create the bucket: {done.stdout!r} {done.stderr!r}")
            time.sleep(0.5)

    def object_store(self) -> ObjectStore:
        """The bucket through the S3 balancer, with the cluster's own keys."""
        credentials = Credentials(self.credentials.access_key, self.credentials.secret_key)
        presigner = Presigner(credentials, REGION, self.s3_url, "path")
        return ObjectStore(lambda: presigner, self.bucket, Transport())

    def token(self, run_id: str, scopes: tuple[str, ...] = ("upload", "read")) -> str:
        """A run token, minted with the replicas' shared secret."""
        from s3sign.server.tokens import mint_token

        return mint_token(run_id, 3600, self.secret.encode(), scopes=scopes)[0]

    def wait_balanced(self, timeout: float = START_TIMEOUT) -> None:
        """Until the balancer answers for the backend (a replica it checked is up)."""
        ready = _answers(f"{self.backend_url}/readyz")
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the balancer found no ready s3sign replica")
            time.sleep(0.2)

    def kill(self, name: str) -> None:
        self.parts[name].kill()

    def restart(self, name: str) -> None:
        """Start a part that was killed or stopped, and wait until it is ready."""
        part = self.parts[name]
        part.stop()
        part.start()
        part.wait_ready()

    def stop(self) -> None:
        """Every part, the last started first."""
        for part in reversed(list(self.parts.values())):
            part.stop()

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def running_cluster(
    root: Path | None = None, replicas: int = MAX_REPLICAS, **settings: str
) -> Iterator[Cluster]:
    """A started cluster (in a temporary folder unless ``root``), stopped on leaving."""
    with tempfile.TemporaryDirectory(prefix="s3sign-cluster-") as folder:
        cluster = Cluster(root or Path(folder), replicas=replicas, settings=settings)
        with cluster:
            yield cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="data and logs (default: a temporary folder)")
    parser.add_argument("--replicas", type=int, default=MAX_REPLICAS)
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # SIGTERM stops in order too
    with running_cluster(arguments.dir, arguments.replicas) as cluster:
        print(f"backend (HAProxy):  {cluster.backend_url}")
        print(f"S3 (HAProxy):       {cluster.s3_url}  bucket {cluster.bucket}")
        print(f"replicas:           {' '.join(cluster.replica_urls[: cluster.replicas])}")
        print(f"S3 gateways:        {' '.join(cluster.gateway_urls)}")
        print(f"logs:               {cluster.root}")
        mint = f"S3SIGN_SERVER_SECRET=$(cat {cluster.secret_file}) s3sign token RUN"
        print(f"a token:            {mint}")
        print("Ctrl-C stops it all.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
