"""What a replica remembers of seals: "open" for ``seconds``, "sealed" for good, and
nothing signed when the store cannot say."""

from __future__ import annotations

from typing import Any, cast

import pytest

from s3sign.protocol import ProtocolError
from s3sign.server.seals import Seals
from s3sign.signing.store import ObjectInfo, ObjectStore, StoreError


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, ObjectInfo] = {}
        self.heads: list[str] = []
        self.down = False

    def head(self, key: str) -> ObjectInfo | None:
        self.heads.append(key)
        if self.down:
            raise StoreError("the object store is unreachable", transient=True)
        return self.objects.get(key)

    def open_uploads(self, prefix: str) -> list[tuple[str, str]]:
        return []

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = ObjectInfo(
            size=len(body), etag="e", last_modified="2026-12-02T06:00:00.000Z"
        )


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
    assert other.seal("r1") == "2026-12-02T06:00:00Z"
    book.check_open("r1")  # still trusted "open" for the rest of its 5 s
    now[0] += 0.2
    assert not book.known_open("r1")
    with pytest.raises(ProtocolError) as refused:
        book.check_open("r1")
    assert (refused.value.status, refused.value.code) == (403, "run_sealed")
    store.objects.clear()  # a seal, once seen, is kept: runs are not unsealed
    now[0] += 3600
    with pytest.raises(ProtocolError):
        book.check_open("r1")


def test_a_store_that_cannot_say_gets_nothing_signed() -> None:
    store, now = FakeStore(), [0.0]
    store.down = True
    with pytest.raises(ProtocolError) as refused:
        seals(store, now).check_open("r1")
    assert (refused.value.status, refused.value.code) == (503, "store_unreachable")


def test_what_a_replica_remembers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("s3sign.server.seals.MAX_REMEMBERED", 3)
    store, now = FakeStore(), [0.0]
    book = seals(store, now)
    for run in ("a", "b", "c", "d"):
        book.check_open(run)
    remembered: Any = book._open
    assert list(remembered) == ["b", "c", "d"]
