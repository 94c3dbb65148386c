"""What a replica remembers of seals: "open" for ``seconds``, "sealed" for good, and
nothing signed when the store cannot say."""

from __future__ import annotations

from typing import Any, cast

import pytest

import s3sign.server.seals as seals_module
from s3sign.protocol import ProtocolError
from s3sign.server.seals import Seals
from s3sign.signing.store import ObjectStore, StoreError


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.heads: list[str] = []
        self.down = False

    def read_small(self, key: str) -> bytes | None:
        self.heads.append(key)
        if self.down:
            raise StoreError("the object store is unreachable", transient=True)
        return self.objects.get(key)

    def open_uploads(self, prefix: str) -> list[tuple[str, str]]:
        return []

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body


def seals(store: FakeStore, now: list[float]) -> Seals:
    return Seals(cast(ObjectStore, store), "runs", 5.0, clock=lambda: now[0])


def test_open_is_asked_again_after_the_cache_and_a_seal_is_kept() -> None:
    store, now = FakeStore(), [100.0]
    book = seals(store, now)
    book.check_open("r1")
    now[0] += 4.9
    book.check_open("r1")
    assert store.heads == ["runs/r1/.s3sign/sealed"]  # once within 5 s
    assert book.known_open("r1")
    other = seals(store, now)  # another replica seals it
    sealed_at = other.seal("r1")
    book.check_open("r1")  # still trusted "open" for the rest of its 5 s
    now[0] += 0.2
    assert not book.known_open("r1")
    with pytest.raises(ProtocolError) as refused:
        book.check_open("r1")
    assert (refused.value.status, refused.value.code) == (403, "run_sealed")
    assert book.sealed_at("r1") == sealed_at
    store.objects.clear()  # a seal, once seen, is kept: runs are not unsealed
    now[0] += 3600
    with pytest.raises(ProtocolError):
        book.check_open("r1")


@pytest.mark.parametrize("answer", [None, b"<html>ok</html>", b'{"runId": "r2"}', b"[]"])
def test_a_store_that_cannot_say_gets_nothing_signed(answer: bytes | None) -> None:
    """Down, or answering something that is not this run's seal (a store that answers 200
    to anything): not taken for a seal, nor for its absence."""
    store, now = FakeStore(), [0.0]
    store.down = answer is None
    if answer is not None:
        store.objects["runs/r1/.s3sign/sealed"] = answer
    with pytest.raises(ProtocolError) as refused:
        seals(store, now).check_open("r1")
    assert (refused.value.status, refused.value.code) == (503, "store_unreachable")


def test_what_a_replica_remembers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seals_module, "MAX_REMEMBERED", 3)
    store, now = FakeStore(), [0.0]
    book = seals(store, now)
    for run in ("a", "b", "c", "d"):
        book.check_open(run)
    remembered: Any = book._open
    assert list(remembered) == ["b", "c", "d"]
