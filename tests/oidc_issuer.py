"""A local OIDC issuer for the tests: its own RSA keys, a discovery document and a JWKS
on 127.0.0.1, and a stand-in for GitHub Actions' ID token request endpoint.

In a thread of the test process (gone with it). ``mint`` signs any claims (good ones by
default: GitHub's shape); ``requests`` counts what was asked, to see the server's cache.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GITHUB_REQUEST_TOKEN = "gh-request-token"
AUDIENCE = "s3sign"
REPOSITORY = "org/app"
KID = "key-1"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """``url`` is the issuer (``iss``); ``github_url`` GitHub's token request endpoint."""

    def __init__(self) -> None:
        self.key = rsa_key()
        self.kid = KID
        self.up = True  # False: every request answers 503
        self.requests: Counter[str] = Counter()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                issuer.requests[path] += 1
                if not issuer.up:
                    self._json(503, {"error": "down"})
                elif path == "/.well-known/openid-configuration":
                    self._json(200, {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
                elif path == "/jwks":
                    self._json(200, {"keys": [issuer.jwk()]})
                elif path == "/github-token":
                    self._github()
                else:
                    self._json(404, {})

            def _github(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {GITHUB_REQUEST_TOKEN}":
                    self._json(401, {"message": "bad request token"})
                    return
                audience = parse_qs(urlsplit(self.path).query).get("audience", [""])[0]
                self._json(200, {"count": 1, "value": issuer.mint(aud=audience)})

            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.github_url = f"{self.url}/github-token?api-version=2.0"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Issuer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key())
        )
        return public | {"kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(self, **changes: Any) -> dict[str, Any]:
        """GitHub Actions' claims for run 123, attempt 1, of org/app on main."""
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": f"repo:{REPOSITORY}:ref:refs/heads/main",
            "repository": REPOSITORY,
            "ref": "refs/heads/main",
            "workflow": "build",
            "run_id": "123",
            "run_attempt": "1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def mint(
        self,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
        **changes: Any,
    ) -> str:
        """An ID token with ``claims(**changes)``, signed with ``key`` (this issuer's)."""
        return jwt.encode(
            self.claims(**changes),
            key or self.key,
            algorithm=algorithm,
            headers={"kid": kid or self.kid},
        )

    def unsigned(self, header: dict[str, Any], secret: bytes | None = None) -> str:
        """A token PyJWT would not make: ``alg: none`` (no signature), or HS256 "signed" with
        ``secret`` (the issuer's public key, as an attacker who read the JWKS would)."""
        head = _b64(json.dumps(header).encode())
        body = _b64(json.dumps(self.claims()).encode())
        signing_input = f"{head}.{body}".encode()
        if secret is None:
            return f"{head}.{body}."
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
        return f"{head}.{body}.{_b64(signature)}"

    def rule(self, **changes: Any) -> dict[str, Any]:
        """The server's rule for this issuer: org/app on main, run gh-RUN-ATTEMPT."""
        rule = {
            "issuer": self.url,
            "audience": AUDIENCE,
            "claims": {"repository": REPOSITORY, "ref": "refs/heads/*"},
            "run": "gh-{run_id}-{run_attempt}",
            "scopes": ["upload", "read"],
            "ttl": "1h",
        }
        rule.update(changes)
        return rule
