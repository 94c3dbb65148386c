"""Token buckets (s3sign/server/rates.py) on a clock the test moves."""

from __future__ import annotations

import pytest

from s3sign.server import rates
from s3sign.server.rates import Buckets, RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = Buckets("token", rate=2, burst=3, clock=clock)
    for _ in range(3):
        buckets.take("a")
    with pytest.raises(RateLimited) as refused:
        buckets.take("a")
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (
        429,
        "rate_limited",
        1,
    )
    buckets.take("b")  # another key has its own bucket
    clock.now += 0.5  # one more at 2 a second
    buckets.take("a")
    with pytest.raises(RateLimited):
        buckets.take("a")
    clock.now += 100  # a long pause fills it up to the burst, not beyond
    for _ in range(3):
        buckets.take("a")
    with pytest.raises(RateLimited):
        buckets.take("a")


def test_retry_after_is_the_whole_seconds_until_the_next_request() -> None:
    clock = Clock()
    slow = Buckets("client address", rate=0.25, burst=1, clock=clock)
    slow.take("x")
    with pytest.raises(RateLimited) as refused:
        slow.take("x")
    assert refused.value.retry_after == 4
    assert "client address" in refused.value.message


def test_no_rate_is_no_limit_and_the_buckets_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unlimited = Buckets("token", rate=0, burst=1)
    for _ in range(1000):
        unlimited.take("a")
    monkeypatch.setattr(rates, "MAX_BUCKETS", 10)
    clock = Clock()
    many = Buckets("token", rate=1, burst=1, clock=clock)
    for key in range(50):
        many.take(str(key))
    assert len(many._buckets) == 10
    many.take("0")  # forgotten: a full bucket again
