"""Run quotas (s3sign/server/quotas.py) against a store that is a dict: what is listed, what
a request adds, what a replica signed that is not listed yet, and when it forgets it."""

from __future__ import annotations

from typing import Any

import pytest

from s3sign.protocol import ProtocolError
from s3sign.server import quotas as quotas_module
from s3sign.server.quotas import MAX_SIGNED, Quota, Quotas, Wanted
from s3sign.server.tokens import mint_token, token_quota, verify_token
from s3sign.signing.store import ObjectInfo

SECRET = b"unit-test-secret-" + b"x" * 32


class Listing:
    """``list_objects`` over a dict of keys and sizes, in pages of ``page``."""

    def __init__(self, objects: dict[str, int], page: int = 1000) -> None:
        self.objects, self.page, self.calls = objects, page, 0

    def list_objects(
        self, prefix: str, start_after: str, token: str | None = None, max_keys: int = 1000
    ) -> tuple[list[tuple[str, ObjectInfo]], str | None]:
        self.calls += 1
        keys = sorted(key for key in self.objects if key.startswith(prefix))
        start = int(token or 0)
        page = keys[start : start + self.page]
        more = start + self.page < len(keys)
        listed = [(key, ObjectInfo(size=self.objects[key], etag="e")) for key in page]
        return listed, str(start + self.page) if more else None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def quotas(objects: dict[str, int], page: int = 1000) -> tuple[Quotas, Listing, Clock]:
    store, clock = Listing(objects, page), Clock()
    return Quotas(store, "runs", clock), store, clock  # type: ignore[arg-type]


def want(name: str, size: int, seconds: float = 900) -> Wanted:
    return Wanted(f"runs/r/{name}", size, seconds)


def test_files_are_admitted_in_order_until_one_would_cross_a_limit() -> None:
    check, _, _ = quotas({"runs/r/a": 60, "runs/other/x": 10**9, "runs/r/.s3sign/sealed": 5})
    answers = check.admit("r", Quota(bytes=100), [want("b", 30), want("c", 20), want("d", 10)])
    assert answers[0] is None
    assert "may hold 100B" in (answers[1] or "")  # 60 + 30 + 20 > 100
    assert answers[2] is None  # a smaller one still fits: 60 + 30 + 10
    files, _, _ = quotas({"runs/r/a": 1})
    answers = files.admit("r", Quota(files=2), [want("b", 1), want("c", 1)])
    assert answers[0] is None
    assert "may hold 2 files" in (answers[1] or "")


def test_a_stored_file_sent_again_adds_only_its_difference() -> None:
    check, _, _ = quotas({"runs/r/a": 60})
    assert check.admit("r", Quota(bytes=100, files=1), [want("a", 100)]) == [None]
    assert check.admit("r", Quota(bytes=100, files=1), [want("a", 101)])[0] is not None


def test_what_a_replica_signed_counts_until_listed_or_expired() -> None:
    objects: dict[str, int] = {}
    check, _, clock = quotas(objects)
    quota = Quota(bytes=100)
    assert check.admit("r", quota, [want("a", 70, seconds=60)]) == [None]
    assert check.admit("r", quota, [want("b", 70)])[0] is not None  # a is on its way
    assert check.admit("r", quota, [want("a", 80)]) == [None]  # a asked for again: replaced
    objects["runs/r/a"] = 80  # it arrived: the listing counts it, once
    assert check.admit("r", quota, [want("b", 20)]) == [None]
    assert check.admit("r", quota, [want("c", 1)])[0] is not None
    clock.now += 901  # b's URL expired unused; a is listed
    assert check.admit("r", quota, [want("c", 20)]) == [None]


def test_a_listing_that_is_over_already_stops() -> None:
    check, store, _ = quotas({f"runs/r/{n:04}": 1 for n in range(50)}, page=10)
    assert check.admit("r", Quota(files=15), [want("new", 1)])[0] is not None
    assert store.calls == 2  # not the five pages: 20 files is over already
    check, store, _ = quotas({f"runs/r/{n:04}": 1 for n in range(50)}, page=10)
    assert check.admit("r", Quota(files=60), [want("new", 1)]) == [None]
    assert store.calls == 5


def test_the_signed_ledger_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quotas_module, "MAX_SIGNED", 4)
    check, _, _ = quotas({})
    for run in ("r1", "r2", "r3"):
        answers = check.admit(
            run, Quota(files=10), [Wanted(f"runs/{run}/{n}", 1, 60) for n in "ab"]
        )
        assert answers == [None, None]
    assert list(check._signed) == ["r2", "r3"]  # the oldest run forgotten
    assert check._count == 4
    assert MAX_SIGNED >= 10_000


def test_quotas_only_lower() -> None:
    server = Quota(bytes=100, files=None)
    assert server.lowered(Quota(bytes=200, files=5)) == Quota(bytes=100, files=5)
    assert server.lowered(Quota()) == server
    assert not Quota()


def test_a_token_carries_its_quota() -> None:
    token, _ = mint_token("r", 60, SECRET, quota=Quota(bytes=2**31, files=5))
    assert token_quota(verify_token(token, SECRET, "r")) == Quota(2**31, 5)
    plain, _ = mint_token("r", 60, SECRET)
    assert token_quota(verify_token(plain, SECRET, "r")) == Quota()
    with pytest.raises(ValueError, match="limits uploads"):
        mint_token("r", 60, SECRET, scopes=("read",), quota=Quota(files=1))
    bad: dict[str, Any]
    for bad in ({"max_bytes": "1"}, {"max_files": -1}, {"max_files": True}, {"max_bytes": 1.5}):
        with pytest.raises(ProtocolError) as refused:
            token_quota(bad)
        assert refused.value.code == "invalid_token"
