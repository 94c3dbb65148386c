"""Revoked tokens: a deny list of token ids (``jti``) that every replica sees through the
store, so that one leaked token can be cut off without rotating the secret.

Each revocation is an empty object ``{keyPrefix}/.s3sign/revoked/{until}-{jti}`` (the
server's own folder, which no run can name): ``until`` is when the token would have
expired anyway (Unix seconds, twelve digits, so that names sort by it), after which the
entry means nothing and the next revocation deletes it. A replica reads the list (one
LIST per 1,000 entries) before it accepts a token, unless it did within
``revocation_cache`` seconds (5 by default): a revocation reaches every replica within
that time. A replica that cannot read the list
accepts no token (503), as one that cannot read a seal signs no write.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable

from s3sign.keys import RESERVED_RUN_ID, run_prefix
from s3sign.protocol import ProtocolError
from s3sign.signing.store import ObjectStore, StoreError

MAX_REVOKED = 100_000  # entries read (a warning past it): a bound on memory and on time
JTI = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENTRY = re.compile(r"(\d{12})-([A-Za-z0-9_-]{1,64})")
log = logging.getLogger("s3sign.server")


class Revocations:
    """The deny list of one store and key prefix, as this replica last read it."""

    def __init__(
        self,
        store: ObjectStore,
        key_prefix: str,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.seconds, self._clock, self._wall = store, seconds, clock, wall
        self.folder = f"{run_prefix(key_prefix, RESERVED_RUN_ID)}revoked/"
        self._revoked: dict[str, int] = {}  # jti -> until (Unix seconds)
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def fresh(self) -> bool:
        """Was the list read within ``seconds`` (no store call needed to check a token)?"""
        read_at = self._read_at
        return read_at is not None and self._clock() - read_at < self.seconds

    def check(self, jti: object) -> None:
        """``ProtocolError`` 401 ``token_revoked`` if the token ``jti`` names is revoked;
        reads the list first unless it is fresh (503 when the store cannot say)."""
        if not self.fresh():
            self.refresh()
        until = self._revoked.get(jti) if isinstance(jti, str) else None
        if until is not None and until > self._wall():
            raise ProtocolError(401, "token_revoked", "this token was revoked; mint a new one")

    def refresh(self) -> None:
        """Read the list from the store (once, for every thread that waits meanwhile)."""
        with self._lock:
            if self.fresh():
                return
            started = self._clock()
            try:
                self._revoked = {jti: until for jti, until, _ in self._entries()}
            except StoreError as exc:
                message = f"cannot tell whether the token was revoked: {exc}"
                raise ProtocolError(503, "store_unreachable", message) from None
            self._read_at = started

    def revoke(self, jti: str, until: int | None, longest: int) -> int:
        """Add ``jti`` to the list until ``until`` (Unix seconds; at most, and by default,
        ``longest`` seconds from now: no token lives longer); entries past their time are
        deleted (best effort: they are the server's own objects and mean nothing). The
        time the revocation lasts."""
        if not JTI.fullmatch(jti):
            raise ProtocolError(422, "invalid_request", "jti is 1-64 of A-Z a-z 0-9 _ -")
        latest = int(self._wall()) + longest
        until = latest if until is None else max(0, min(until, latest))
        try:
            self.store.put(f"{self.folder}{until:012d}-{jti}", b"", "application/octet-stream")
        except StoreError as exc:
            message = f"the token was not revoked: {exc}"
            raise ProtocolError(exc.status, exc.answer_code, message) from None
        with self._lock:
            self._revoked[jti] = max(until, self._revoked.get(jti, 0))
        with contextlib.suppress(StoreError):
            for _, _, (key, etag) in self._entries(expired=True):
                with contextlib.suppress(StoreError):
                    self.store.delete_if(key, etag)
        return until

    def _entries(self, expired: bool = False) -> list[tuple[str, int, tuple[str, str]]]:
        """(jti, until, (key, etag)) of each entry in the store that still means something,
        or (``expired``) of each that no longer does; at most ``MAX_REVOKED``. Names sort by
        ``until`` (twelve digits): the listing starts, or stops, at now."""
        now, found = int(self._wall()), list[tuple[str, int, tuple[str, str]]]()
        start = "" if expired else f"{self.folder}{now:012d}"
        token: str | None = None
        while len(found) < MAX_REVOKED:
            objects, token = self.store.list_objects(self.folder, start, token)
            for key, info in objects:
                match = _ENTRY.fullmatch(key[len(self.folder) :])
                if match is None:
                    continue  # not ours: nothing to trust or delete
                until = int(match.group(1))
                if expired and until > now:
                    return found
                found.append((match.group(2), until, (key, info.etag)))
            if token is None:
                return found
        log.warning("over %d revoked tokens: the latest revocations may not be seen", MAX_REVOKED)
        return found
