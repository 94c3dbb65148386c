"""Who may call the backend: the checks every protocol call passes before its body is read.

In order: the client address's rate, the token (one of the server's secrets, this run,
this scope, not too long-lived), the token's rate, the list of revoked tokens (read from
the store on a thread, at most every ``revocation_cache`` seconds), and for a call that
writes, the run's seal (at most every ``seal_cache`` seconds). The claims are kept on the
request for the route (a token's quota) and the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from s3sign.config import Settings
from s3sign.server.rates import Buckets
from s3sign.server.routes import Authorise
from s3sign.server.signer import UploadSigner
from s3sign.server.tokens import ADMIN_SUBJECT, REVOKE, Keys, verify_link, verify_token


class Gate:
    def __init__(self, settings: Settings, keys: Keys, signer: UploadSigner) -> None:
        self.settings, self.keys, self.signer = settings, keys, signer
        self._clients = Buckets("client address", settings.client_rate, settings.client_burst)
        self._tokens = Buckets("token", settings.token_rate, settings.token_burst)

    def authoriser(self, scope: str, writes: bool = False) -> Authorise:
        """A dependency for the routes of ``scope``: FastAPI runs it before reading the
        body, so a caller without a valid token learns nothing about what the body should
        be; ``writes``: the run must not be sealed."""

        async def authorise(request: Request, run_id: str) -> None:
            longest = self.settings.max_token_ttl
            await self._admitted(
                request,
                lambda: verify_token(_bearer(request), self.keys, run_id, longest, scope),
            )
            seals = self.signer.seals
            if writes and not seals.known_open(run_id):
                await run_in_threadpool(seals.check_open, run_id)

        return authorise

    async def operator(self, request: Request) -> None:
        """A dependency: a revoke token, minted with the server's secret."""
        longest = self.settings.max_token_ttl
        await self._admitted(
            request,
            lambda: verify_token(_bearer(request), self.keys, ADMIN_SUBJECT, longest, REVOKE),
        )

    async def link(self, request: Request, token: str, run_id: str, file_name: str) -> None:
        """A stable link's token: this file of this run."""
        longest = self.settings.max_link_ttl
        await self._admitted(
            request, lambda: verify_link(token, self.keys, run_id, file_name, longest)
        )

    async def anyone(self, request: Request) -> None:
        """A dependency for a call that needs no token (the OIDC exchange): the client
        address's rate only."""
        self._clients.take(request.client.host if request.client else "")

    async def _admitted(self, request: Request, verify: Callable[[], dict[str, Any]]) -> None:
        await self.anyone(request)
        claims = verify()
        request.state.claims = claims
        self._tokens.take(str(claims.get("jti") or claims.get("sub")))
        revocations = self.signer.revocations
        if not revocations.fresh():
            await run_in_threadpool(revocations.refresh)
        revocations.check(claims.get("jti"))


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
