"""The cluster suite: several `s3sign serve` replicas behind HAProxy, over a SeaweedFS
cluster of separate processes (deploy/local_cluster/cluster.py), losing parts under load.

CI runs the short form (fewer and smaller files); ``S3SIGN_CLUSTER=full`` runs the form
docs/deploy.md reports (500 small files and one of 300 MiB per push). HAProxy comes from
the operating system (`.ci/run` installs it); where it is missing the suite is skipped,
except under CI, where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local_cluster.cluster import Cluster
from tests.oidc_issuer import Issuer

MODE = os.environ.get("S3SIGN_CLUSTER", "short")


def scale(short: int, full: int) -> int:
    """``short`` in CI, ``full`` when asked for."""
    return full if MODE == "full" else short


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """A CI's OIDC issuer the replicas trust: a token minted by one replica (an exchange)
    must work on the others."""
    with Issuer() as running:
        yield running


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[Cluster]:
    """The whole cluster; multipart from 8 MiB in the short form, so that the big file of
    each push is a multipart upload in both forms."""
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        if os.environ.get("CI"):
            pytest.fail("HAProxy is not installed: .ci/run installs it with apt-get")
        pytest.skip("HAProxy is not installed (apt-get install haproxy)")
    settings = {} if MODE == "full" else {"multipart_threshold": "8MiB", "part_size": "5MiB"}
    settings["oidc"] = json.dumps([issuer.rule()])
    running = Cluster(tmp_path_factory.mktemp("cluster"), settings=settings)
    with running:
        yield running
