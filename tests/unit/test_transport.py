"""One set of rules for every HTTP call: proxies and no_proxy as curl reads them, CA bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3sign.errors import ConfigError
from s3sign.http.connections import Connections
from s3sign.http.transport import Proxies, Transport


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("*", "s3.amazonaws.com", 443, True),
        (".amazonaws.com", "b.s3.amazonaws.com", 443, True),
        ("amazonaws.com", "b.s3.amazonaws.com", 443, True),
        ("amazonaws.com", "notamazonaws.com", 443, False),
        ("minio.internal:9000", "minio.internal", 9000, True),
        ("minio.internal:9000", "minio.internal", 9001, False),
        ("", "anything", 80, False),
        # CIDR, as curl reads it since 7.86 (and Go, and Python's requests)
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("localhost, 192.168.0.0/16", "192.168.7.1", 9000, True),
        ("192.168.1.7", "192.168.1.7", 443, True),
        ("192.168.1.7", "192.168.1.70", 443, False),
        ("10.0.0.0/8", "10.example.com", 443, False),  # a name is not in a network
        ("fd00::/8", "fd12::1", 443, True),
        ("::1", "::1", 443, True),
        ("[::1]", "[::1]", 443, True),
        ("::1", "::2", 443, False),
        ("LOCALHOST", "localhost", 80, True),
    ],
)
def test_no_proxy_rules(no_proxy: str, host: str, port: int, direct: bool) -> None:
    proxies = Proxies.from_environ({"https_proxy": "http://proxy:3128", "NO_PROXY": no_proxy})
    assert (proxies.for_origin("https", host, port) is None) is direct


def test_lower_case_wins_as_in_curl() -> None:
    proxies = Proxies.from_environ(
        {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2", "NO_PROXY": "x"}
    )
    proxy = proxies.for_origin("https", "s3.amazonaws.com", 443)
    assert proxy is not None
    assert (proxy.host, proxy.port) == ("lower", 1)
    assert proxies.for_origin("http", "s3.amazonaws.com", 80) is None  # no http_proxy


@pytest.mark.parametrize("value", ["https://proxy:3128", "socks5://proxy:1080", "http://p:99999"])
def test_a_proxy_that_cannot_be_used_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="https_proxy"):
        Proxies.from_environ({"https_proxy": value})


def test_ca_bundles_per_peer(tmp_path: Path) -> None:
    s3, backend, system = (tmp_path / name for name in ("s3.pem", "backend.pem", "system.pem"))
    for path in (s3, backend, system):
        path.write_text("-")
    transport = Transport.from_environ(
        {"AWS_CA_BUNDLE": str(s3), "REQUESTS_CA_BUNDLE": str(backend), "SSL_CERT_FILE": "x"}
    )
    assert transport.ca_bundle("s3") == str(s3)
    assert transport.ca_bundle("backend") == str(backend)
    fallback = Transport.from_environ({"SSL_CERT_FILE": str(system)})
    assert fallback.ca_bundle("backend") == str(system)
    assert fallback.ca_bundle("s3") is None  # the system's store (which reads SSL_CERT_FILE)
    assert Transport().ca_bundle("backend") is None


@pytest.mark.parametrize(
    ("variable", "peer"),
    [("AWS_CA_BUNDLE", "s3"), ("REQUESTS_CA_BUNDLE", "backend"), ("SSL_CERT_FILE", "backend")],
)
def test_a_ca_bundle_that_is_not_there_is_a_configuration_error(
    tmp_path: Path, variable: str, peer: str
) -> None:
    """Said at once, naming the variable: not five retries of a TLS failure."""
    transport = Transport.from_environ({variable: str(tmp_path / "gone.pem")})
    with pytest.raises(ConfigError, match=f"{variable}=.*gone.pem: no such readable file"):
        Connections(transport, "s3" if peer == "s3" else "backend", 5)
