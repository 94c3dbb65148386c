"""The server's store pool: fair between requests, a deadline per request, one file's failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from s3sign.server.pool import BUSY, StorePool


def slow(seconds: float) -> Callable[[int], str]:
    def call(item: int) -> str:
        time.sleep(seconds)
        return f"done {item}"

    return call


def failure(item: int, code: str, message: str) -> str:
    return f"{code} {item}: {message}"


def test_a_small_request_does_not_wait_behind_a_big_one() -> None:
    """4 threads, a request of 200 calls of 20 ms (1 s in all), then one of a single call:
    its call takes the next free thread (FIFO would make it wait the whole second)."""
    pool = StorePool(threads=4)
    big = threading.Thread(target=pool.map, args=(slow(0.02), range(200), failure))
    big.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert pool.map(slow(0.02), [7], failure) == ["done 7"]
    small = time.monotonic() - started
    big.join()
    assert small < 0.3, f"the one-call request took {small:.2f} s"


def test_a_request_alone_gets_every_thread() -> None:
    pool = StorePool(threads=8)
    started = time.monotonic()
    assert pool.map(slow(0.1), range(16), failure) == [f"done {i}" for i in range(16)]
    assert time.monotonic() - started < 0.6  # two rounds of 0.1 s, not sixteen


def test_calls_not_started_by_the_deadline_are_answered_busy() -> None:
    pool = StorePool(threads=1, wait=0.25)
    results = pool.map(slow(0.1), range(6), failure)
    assert results[:2] == ["done 0", "done 1"]
    assert results[-1] == f"storage_unavailable 5: {BUSY}"


def test_one_files_exception_is_its_own() -> None:
    def call(item: int) -> str:
        if item == 1:
            raise UnicodeEncodeError("latin-1", "€", 0, 1, "no")
        return f"done {item}"

    assert StorePool(threads=2).map(call, range(3), failure) == [
        "done 0",
        "internal_error 1: the server failed on this file; see its log",
        "done 2",
    ]
