"""How every HTTP call the project makes is made: one set of rules, read in one place.

Push's PUTs and its backend calls, the server's own S3 calls, ``sign --multipart``,
``doctor``, the store check, the demo and the embedded store's readiness check all
go through :class:`s3sign.http.connections.Connections` built from a :class:`Transport`:

- **TLS.** S3 is verified with ``AWS_CA_BUNDLE`` when set (as the AWS CLI reads
  it), the backend with ``REQUESTS_CA_BUNDLE``, else ``SSL_CERT_FILE``; otherwise
  with the system's CA store. A variable naming a file that is not there is a
  configuration error (exit 3), not a network failure retried five times.
- **Proxies** as curl reads them: ``http_proxy`` / ``https_proxy`` (lower case
  first, then upper case; plain ``http://`` proxies, HTTPS tunnelled end to end
  with ``CONNECT``) and ``no_proxy``: ``*``, a host and its subdomains (a leading
  dot is optional), ``host:port``, an IP address, or a network in CIDR notation
  (``10.0.0.0/8``, ``fd00::/8``).
- **Timeouts**: a connection within ``connect_timeout`` (10 s); a whole answer
  within the caller's deadline (push: ``stall_timeout``, 2 minutes by default; the
  server's store calls 60 s; readiness probes 3 s).

The embedded store (``demo``, ``serve --local``) is a child process on 127.0.0.1,
reached over plain HTTP and always directly, with ``Transport()``: a proxy
elsewhere could not reach it.
"""

from __future__ import annotations

import base64
import ipaddress  # urllib.parse imports it anyway
import os  # os.access: is a CA bundle readable
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from s3sign.errors import ConfigError

CONNECT_TIMEOUT = 10.0
Peer = Literal["s3", "backend"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: str  # a Proxy-Authorization header line, or ""


@dataclass(frozen=True)
class Proxies:
    """``http_proxy``, ``https_proxy`` and ``no_proxy``: which proxy, if any, for an origin."""

    by_scheme: Mapping[str, Proxy | None] = field(default_factory=dict)
    bypass: tuple[str, ...] = ()  # no_proxy's names, lower case, without leading dots
    networks: tuple[Network, ...] = ()  # no_proxy's IP addresses and CIDR networks

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Proxies:
        def get(name: str) -> str:
            return environ.get(name) or environ.get(name.upper()) or ""

        by_scheme = {
            scheme: _parse_proxy(f"{scheme}_proxy", get(f"{scheme}_proxy"))
            for scheme in ("http", "https")
        }
        names: list[str] = []
        networks: list[Network] = []
        for entry in get("no_proxy").split(","):
            item = entry.strip().lower()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                names.append(item.lstrip("."))
        return cls(by_scheme, tuple(names), tuple(networks))

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.by_scheme.get(scheme)
        if proxy is None or self._bypassed(host.lower().strip("[]"), port):
            return None
        return proxy

    def _bypassed(self, host: str, port: int) -> bool:
        if self.networks:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                pass
            else:
                if any(address in network for network in self.networks):
                    return True
        for item in self.bypass:
            if item == "*":
                return True
            name, _, item_port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
            if item_port and item_port != str(port):
                continue
            if host == name or host.endswith("." + name):
                return True
        return False


@dataclass(frozen=True)
class Transport:
    """The rules for HTTP calls: ``from_environ()`` as this process's environment sets
    them; ``Transport()`` is direct, with the system's CA store."""

    proxies: Proxies = field(default_factory=Proxies)
    s3_ca_bundle: str | None = None  # None: the system's CA store
    backend_ca_bundle: str | None = None
    s3_ca_variable: str = "AWS_CA_BUNDLE"  # where each came from, to name it in errors
    backend_ca_variable: str = "REQUESTS_CA_BUNDLE"
    connect_timeout: float = CONNECT_TIMEOUT

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Transport:
        """The rules these environment variables set (``load_settings`` passes the
        process's)."""
        backend_variable = next(
            (name for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE") if env.get(name)),
            "REQUESTS_CA_BUNDLE",
        )
        return cls(
            proxies=Proxies.from_environ(env),
            s3_ca_bundle=env.get("AWS_CA_BUNDLE") or None,
            backend_ca_bundle=env.get(backend_variable) or None,
            backend_ca_variable=backend_variable,
        )

    def ca_bundle(self, peer: Peer) -> str | None:
        """The CA file to verify ``peer`` with (None: the system's); ``ConfigError`` when
        the variable names a file that cannot be read."""
        path, variable = (
            (self.s3_ca_bundle, self.s3_ca_variable)
            if peer == "s3"
            else (self.backend_ca_bundle, self.backend_ca_variable)
        )
        if path is not None and not os.access(path, os.R_OK):
            raise ConfigError(
                f"{variable}={path}: no such readable file",
                hint="point it at the PEM file of the CA that signed the server's "
                "certificate, or unset it to use the system's CA store",
            )
        return path


def _parse_proxy(variable: str, text: str) -> Proxy | None:
    if not text:
        return None
    hint = "give it as http://HOST:PORT (HTTPS still runs end to end, in a tunnel)"
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        port = parts.port or 80
    except ValueError:  # an unclosed [, a port out of range: never a URL's text in the error
        raise ConfigError(f"{variable} is not a valid URL", hint=hint) from None
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(
            f"{variable}: {parts.scheme}://{parts.hostname} is not an http:// proxy", hint=hint
        )
    authorization = ""
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = f"Proxy-Authorization: Basic {base64.b64encode(credentials).decode()}\r\n"
    return Proxy(parts.hostname, port, authorization)
