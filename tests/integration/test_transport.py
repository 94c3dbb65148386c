"""One set of rules for every HTTP call, shown on each path with a private CA and a proxy.

The store (SeaweedFS) and the backend (the real ``s3sign serve``) are reached over
HTTPS, each behind a TLS front whose certificate a private CA signed; workers, the
server and the CLI are told about that CA only through the environment
(``AWS_CA_BUNDLE`` for S3, ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` for the
backend), and each process gets a proxy of its own, so that each proxy's log shows
which process went through it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from s3sign.local.seaweed import LocalS3, free_ports
from s3sign.signing.presign import SignRequest
from tests.integration.conftest import Backend, running_backend
from tests.netkit import ForwardProxy, PrivateCA, TLSFront, private_ca

PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_store(local_s3: LocalS3, ca: PrivateCA) -> Iterator[TLSFront]:
    front = TLSFront(int(local_s3.endpoint_url.rsplit(":", 1)[1]), ca)
    yield front
    front.close()


@pytest.fixture(scope="module")
def serve_proxy() -> Iterator[ForwardProxy]:
    proxy = ForwardProxy()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def tls_backend(
    local_s3: LocalS3,
    ca: PrivateCA,
    tls_store: TLSFront,
    serve_proxy: ForwardProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Backend, TLSFront]]:
    """``serve`` whose S3 is HTTPS with the private CA, reached through its own proxy, and
    itself behind a TLS front; multipart from 5 MiB."""
    log = tmp_path_factory.mktemp("serve-tls") / "serve.log"
    environ = {"AWS_CA_BUNDLE": str(ca.ca), "https_proxy": serve_proxy.url}
    with running_backend(
        local_s3,
        log,
        endpoint_url=tls_store.url,
        environ=environ,
        multipart_threshold="5MiB",
        part_size="5MiB",
    ) as backend:
        front = TLSFront(int(backend.url.rsplit(":", 1)[1]), ca)
        yield backend, front
        front.close()


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without AWS, s3sign or proxy settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "S3SIGN_"))
        and key.lower() not in PROXY_VARIABLES
        and key not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
    }
    env.update(AWS_EC2_METADATA_DISABLED="true", **extra)
    return env


def store_user_env(store: LocalS3, front: TLSFront, **extra: str) -> dict[str, str]:
    """The environment of someone with the store's keys, its endpoint the TLS front."""
    return clean_env(
        AWS_ACCESS_KEY_ID=store.credentials.access_key,
        AWS_SECRET_ACCESS_KEY=store.credentials.secret_key,
        AWS_REGION=store.region,
        S3SIGN_ENDPOINT_URL=front.url,
        **extra,
    )


def s3sign(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "s3sign", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def connects(proxy: ForwardProxy, front: TLSFront) -> int:
    return proxy.targets().count(f"CONNECT 127.0.0.1:{front.port}")


def two_files(root: Path) -> Path:
    work = root / "files"
    work.mkdir()
    (work / "small.txt").write_bytes(os.urandom(1000))
    (work / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))  # multipart: serve's S3 calls
    return work


def test_push_and_serve_verify_a_private_ca_and_go_through_their_proxies(
    tls_backend: tuple[Backend, TLSFront],
    tls_store: TLSFront,
    serve_proxy: ForwardProxy,
    ca: PrivateCA,
    tmp_path: Path,
) -> None:
    """Before, the server's own S3 calls ignored AWS_CA_BUNDLE and proxies (requests with
    trust_env=False): a multipart upload could not even start."""
    backend, front = tls_backend
    run = f"run-{uuid.uuid4().hex[:10]}"
    proxy = ForwardProxy()
    env = clean_env(
        S3SIGN_BACKEND=front.url,
        S3SIGN_TOKEN=backend.token(run),
        AWS_CA_BUNDLE=str(ca.ca),
        REQUESTS_CA_BUNDLE=str(ca.ca),
        https_proxy=proxy.url,
    )
    before = connects(serve_proxy, tls_store)
    done = s3sign("push", run, ".", "--json", env=env, cwd=two_files(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {f["fileName"]: f["status"] for f in report["files"]} == {
        "small.txt": "uploaded",
        "big.bin": "uploaded",
    }
    assert connects(proxy, front) >= 1  # the worker's backend calls
    assert connects(proxy, tls_store) >= 1  # the worker's PUTs
    assert connects(serve_proxy, tls_store) > before  # the server's multipart calls
    presigner = backend.store.presigner()  # read back directly, over plain HTTP
    for outcome in report["files"]:
        url = presigner.sign(SignRequest(backend.store.bucket, outcome["key"], method="GET")).url
        stored = requests.get(url, timeout=60).content
        assert stored == (tmp_path / "files" / outcome["fileName"]).read_bytes()
    proxy.close()


@pytest.mark.parametrize(
    ("trusted", "code", "says"),
    [
        ({}, 5, "REQUESTS_CA_BUNDLE for the backend"),  # the backend's certificate
        ({"REQUESTS_CA_BUNDLE": "ca"}, 1, "its TLS certificate is not trusted"),  # S3's
        ({"SSL_CERT_FILE": "ca", "AWS_CA_BUNDLE": "ca"}, 0, ""),
        ({"REQUESTS_CA_BUNDLE": "gone", "AWS_CA_BUNDLE": "ca"}, 3, "REQUESTS_CA_BUNDLE="),
    ],
)
def test_each_peer_is_verified_with_its_own_bundle(
    tls_backend: tuple[Backend, TLSFront],
    ca: PrivateCA,
    tmp_path: Path,
    trusted: dict[str, str],
    code: int,
    says: str,
) -> None:
    backend, front = tls_backend
    run = f"run-{uuid.uuid4().hex[:10]}"
    bundles = {"ca": str(ca.ca), "gone": str(tmp_path / "gone.pem")}
    env = clean_env(
        S3SIGN_BACKEND=front.url,
        S3SIGN_TOKEN=backend.token(run),
        S3SIGN_STALL_TIMEOUT="5s",
        **{name: bundles[which] for name, which in trusted.items()},
    )
    work = tmp_path / "files"
    work.mkdir()
    (work / "small.txt").write_bytes(b"x" * 100)
    done = s3sign("push", run, ".", env=env, cwd=work)
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_no_proxy_in_cidr_notation_is_honoured(backend: Backend, tmp_path: Path) -> None:
    """The README says proxies work as curl reads them: no_proxy=127.0.0.0/8 goes direct
    (before, only names matched, and the push went to the dead proxy)."""
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    run = f"run-{uuid.uuid4().hex[:10]}"
    env = clean_env(
        S3SIGN_BACKEND=backend.url,
        S3SIGN_TOKEN=backend.token(run),
        http_proxy=dead,
        https_proxy=dead,
        no_proxy="10.0.0.0/8, 127.0.0.0/8",
    )
    work = tmp_path / "files"
    work.mkdir()
    (work / "a.txt").write_bytes(b"a" * 10)
    done = s3sign("push", run, ".", env=env, cwd=work)
    assert done.returncode == 0, done.stderr


def test_sign_multipart_by_hand_verifies_a_private_ca_through_a_proxy(
    local_s3: LocalS3, tls_store: TLSFront, ca: PrivateCA
) -> None:
    """``sign --multipart`` starts the upload itself (an S3 call): before, through requests
    with trust_env=False, it ignored AWS_CA_BUNDLE and the proxy."""
    proxy = ForwardProxy()
    env = store_user_env(local_s3, tls_store, AWS_CA_BUNDLE=str(ca.ca), https_proxy=proxy.url)
    name = f"tests/{uuid.uuid4().hex}/big.bin"
    started = s3sign("sign", local_s3.bucket, name, "--multipart", "--size", "6MiB", env=env)
    assert started.returncode == 0, started.stderr
    plan = json.loads(started.stdout)
    assert all(part["url"].startswith(tls_store.url) for part in plan["parts"])
    aborted = s3sign("sign", local_s3.bucket, name, "--abort", plan["uploadId"], env=env)
    assert aborted.returncode == 0, aborted.stderr
    assert connects(proxy, tls_store) >= 2
    untrusted = {key: value for key, value in env.items() if key != "AWS_CA_BUNDLE"}
    refused = s3sign("sign", local_s3.bucket, name, "--multipart", "--size", "6MiB", env=untrusted)
    assert refused.returncode != 0
    assert "TLS certificate is not trusted" in refused.stderr
    assert "Traceback" not in refused.stderr
    proxy.close()


def test_doctor_checks_through_the_same_rules(
    local_s3: LocalS3,
    tls_store: TLSFront,
    tls_backend: tuple[Backend, TLSFront],
    ca: PrivateCA,
) -> None:
    """Before, doctor used urllib with the system's CA store: a private CA failed here while
    push worked."""
    _, front = tls_backend
    proxy = ForwardProxy()
    trusted = {"AWS_CA_BUNDLE": str(ca.ca), "REQUESTS_CA_BUNDLE": str(ca.ca)}
    env = store_user_env(local_s3, tls_store, https_proxy=proxy.url, **trusted)
    args = ("doctor", "--bucket", local_s3.bucket, "--backend", front.url)
    done = s3sign(*args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("endpoint", "bucket", "store", "backend"):
        assert f"ok    {name}" in done.stdout, done.stdout
    assert connects(proxy, tls_store) >= 2
    assert connects(proxy, front) >= 1
    untrusted = {key: value for key, value in env.items() if not key.endswith("CA_BUNDLE")}
    failed = s3sign(*args, env=untrusted)
    assert failed.returncode == 1
    assert "FAIL  endpoint" in failed.stdout
    assert "TLS certificate is not trusted" in failed.stdout
    assert "FAIL  backend" in failed.stdout
    proxy.close()
