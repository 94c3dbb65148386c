"""Sealed runs: a run closed with ``s3sign seal`` takes no more writes, whatever token is
shown: no upload, part, completion (which may delete) or abort is signed for it.

The seal is an object in the store, ``{keyPrefix}/{runId}/.s3sign/sealed`` (a name no
file can take: the key policy refuses names under ``.s3sign/``), so every replica sees it
through the store alone and the backend keeps no state. Before it signs a write, a replica
reads the seal from the store (a GET of a few bytes, which must be this run's seal),
unless it did within ``seal_cache`` seconds (5 by default): a seal reaches every replica
within that time. Once seen, a seal is kept: a run is not unsealed. A replica that cannot
ask the store, or gets an answer that is no seal, signs nothing for the run (503).
Sealing aborts the run's multipart uploads still open: no one could finish them any more.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from s3sign.keys import run_prefix, seal_key
from s3sign.protocol import ProtocolError
from s3sign.signing.store import ObjectStore, StoreError
from s3sign.units import iso_utc

T = TypeVar("T")
MAX_REMEMBERED = 10_000  # runs whose answer is kept; past it, the oldest are asked again


class Seals:
    """Which runs are sealed, as the store says, remembered for a few seconds."""

    def __init__(
        self,
        store: ObjectStore,
        key_prefix: str,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.key_prefix, self.seconds, self._clock = store, key_prefix, seconds, clock
        self._open: dict[str, float] = {}  # run -> when the store said it was not sealed
        self._sealed: dict[str, str] = {}  # run -> when it was sealed (ISO 8601)
        self._lock = threading.Lock()

    def known_open(self, run_id: str) -> bool:
        """Did the store say, within ``seconds``, that the run is open (no call now)?"""
        with self._lock:
            asked = self._open.get(run_id)
        return asked is not None and self._clock() - asked < self.seconds

    def check_open(self, run_id: str) -> None:
        """``ProtocolError`` (403 ``run_sealed``) if the run is sealed."""
        sealed_at = self.sealed_at(run_id)
        if sealed_at is not None:
            raise ProtocolError(
                403,
                "run_sealed",
                f"run {run_id} was sealed at {sealed_at}: it takes no more uploads, "
                "overwrites or deletes",
            )

    def sealed_at(self, run_id: str) -> str | None:
        """When the run was sealed, or None if it is open (asked at most every
        ``seconds``)."""
        now = self._clock()
        with self._lock:
            if run_id in self._sealed:
                return self._sealed[run_id]
            asked = self._open.get(run_id)
            if asked is not None and now - asked < self.seconds:
                return None
        try:
            stored = self.store.read_small(seal_key(self.key_prefix, run_id))
        except StoreError as exc:
            raise _unknown(str(exc)) from None
        sealed_at = None if stored is None else _sealed_at(stored, run_id)
        with self._lock:
            if sealed_at is None:
                self._remember(self._open, run_id, now)
                return None
            self._remember(self._sealed, run_id, sealed_at)
            self._open.pop(run_id, None)
            return sealed_at

    def seal(self, run_id: str) -> str:
        """Close the run (again: a no-op); when it was sealed."""
        if (sealed_at := self.sealed_at(run_id)) is not None:
            return sealed_at
        sealed_at = iso_utc(datetime.now(UTC))
        body = json.dumps({"runId": run_id, "sealedAt": sealed_at}).encode()
        try:
            self.store.put(seal_key(self.key_prefix, run_id), body, "application/json")
        except StoreError as exc:
            message = f"the run was not sealed: {exc}"
            raise ProtocolError(exc.status, exc.answer_code, message) from None
        with self._lock:
            self._remember(self._sealed, run_id, sealed_at)
            self._open.pop(run_id, None)
        self._abort_open_uploads(run_id)
        return sealed_at

    def _abort_open_uploads(self, run_id: str) -> None:
        """No one may complete or abort an upload of a sealed run: the ones left open (a
        push cut short before the seal) are aborted here, so that their parts do not stay
        in the store. Best effort (a bucket lifecycle rule is the backstop)."""
        prefix = run_prefix(self.key_prefix, run_id)
        with contextlib.suppress(StoreError):
            for key, upload_id in self.store.open_uploads(prefix):
                if key.startswith(prefix) and upload_id:
                    with contextlib.suppress(StoreError):
                        self.store.abort_multipart(key, upload_id)

    @staticmethod
    def _remember(answers: dict[str, T], run_id: str, value: T) -> None:
        answers.pop(run_id, None)
        if len(answers) >= MAX_REMEMBERED:
            del answers[next(iter(answers))]  # the oldest: dicts keep their order
        answers[run_id] = value


def _sealed_at(stored: bytes, run_id: str) -> str:
    """When the seal ``stored`` says the run was sealed; a store whose answer is no seal of
    this run (junk, another run's) cannot say, and nothing is signed on its word."""
    try:
        seal = json.loads(stored)
    except ValueError:
        seal = None
    if not isinstance(seal, dict) or seal.get("runId") != run_id:
        raise _unknown("its answer for the run's seal is not one")
    sealed_at = seal.get("sealedAt")
    if isinstance(sealed_at, str) and sealed_at.isprintable() and len(sealed_at) <= 40:
        return sealed_at
    return "?"  # a seal, whose time is not one to repeat


def _unknown(why: str) -> ProtocolError:
    return ProtocolError(503, "store_unreachable", f"cannot tell whether the run is sealed: {why}")
