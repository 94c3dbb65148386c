"""Network parts for the tests: a private CA, a TLS front for any local server, a proxy.

All on 127.0.0.1, in threads of the test process, gone with it.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class PrivateCA:
    """A CA of our own (``ca``: what a client must be told to trust) and a certificate it
    signed for 127.0.0.1 (``cert``, ``key``: what a server shows)."""

    ca: Path
    cert: Path
    key: Path


def private_ca(directory: Path) -> PrivateCA:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3sign test CA")])
    ca_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ca_id, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_id), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = PrivateCA(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class _Listener:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed
            while True:
                client, _ = self.listener.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.listener.close()


class TLSFront(_Listener):
    """HTTPS on a port of its own, in front of a plain HTTP server on 127.0.0.1 (its
    certificate from ``ca``): the bytes pass unchanged, so SigV4 holds."""

    def __init__(self, upstream_port: int, ca: PrivateCA) -> None:
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(ca.cert, ca.key)
        self.handshakes = 0
        super().__init__()
        self.url = f"https://127.0.0.1:{self.port}"

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):  # a client that does not trust us hangs up here
            client.close()
            return
        self.handshakes += 1
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        # One thread for both directions: an SSL socket must not be read and written at once.
        with secure, upstream, contextlib.suppress(OSError):
            while True:
                ready = (
                    [secure] if secure.pending() else select.select([secure, upstream], [], [])[0]
                )
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is secure else secure).sendall(data)


class ForwardProxy(_Listener):
    """An HTTP proxy: CONNECT tunnels, and absolute-form requests forwarded; it notes each
    request head it was sent."""

    def __init__(self) -> None:
        self.heads: list[str] = []
        super().__init__()

    def targets(self) -> list[str]:
        """``METHOD target`` of each request it was sent."""
        return [" ".join(head.split(" ", 2)[:2]) for head in self.heads]

    def _serve(self, client: socket.socket) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            block = client.recv(65536)
            if not block:
                client.close()
                return
            received += block
        head, _, rest = received.partition(b"\r\n\r\n")
        self.heads.append(head.decode())
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method == "CONNECT":
            upstream = socket.create_connection(address(target))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream = socket.create_connection(address(urlsplit(target).netloc))
            upstream.sendall(head + b"\r\n\r\n" + rest)
        relay(client, upstream)


def address(authority: str) -> tuple[str, int]:
    host, _, port = authority.rpartition(":")
    return host.strip("[]"), int(port)


def relay(one: socket.socket, other: socket.socket) -> None:
    """Bytes both ways until each side has closed."""
    for source, sink in ((one, other), (other, one)):
        threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
