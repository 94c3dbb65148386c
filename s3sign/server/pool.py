"""The server's calls to the store: a bounded number at once, shared fairly between requests.

One pool of ``threads`` makes every store call a batch needs (starting multipart
uploads, HEADs, assembling, deleting). Its threads take the requests' calls in
turn, one call from each request waiting, so that a request with one file does
not wait behind the 1,000 calls of another that came first, while a request
alone gets every thread. Each request has a deadline: a call that has not
started by then is not made, and its file is answered ``storage_unavailable``
("ask again"), so a slow or overloaded store costs a worker a retry, not a
hung request. Whatever one file's call raises is that file's failure, never
its batch's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from s3sign.protocol import STORAGE_UNAVAILABLE

THREADS = 32  # store calls in flight, for all requests together
WAIT = 30.0  # seconds from a request's start during which its calls may begin
BUSY = "the server's store calls are all taken (the store is slow or busy): ask again"
log = logging.getLogger("s3sign.server")

Item = TypeVar("Item")
Result = TypeVar("Result")
Fail = Callable[[Item, str, str], Result]  # (item, code, message) -> that item's failure


class _Batch(Generic[Item, Result]):
    """One request's calls: which is next, and the results as they come."""

    def __init__(
        self, call: Callable[[Item], Result], items: Sequence[Item], fail: Fail[Item, Result]
    ) -> None:
        self.call, self.items, self.fail = call, items, fail
        self.deadline = 0.0
        self.next = 0  # the index of the next call to start
        self.results: list[Any] = [None] * len(items)
        self._left = len(items)
        self._lock = threading.Lock()
        self.done = threading.Event()

    def run(self, index: int) -> None:
        item = self.items[index]
        if time.monotonic() >= self.deadline:
            result = self.fail(item, STORAGE_UNAVAILABLE, BUSY)
        else:
            result = one(self.call, item, self.fail)
        with self._lock:
            self.results[index] = result
            self._left -= 1
            if not self._left:
                self.done.set()


class StorePool:
    def __init__(self, threads: int = THREADS, wait: float = WAIT) -> None:
        self.threads, self.wait = threads, wait
        self._waiting: deque[_Batch[Any, Any]] = deque()  # batches with calls not yet started
        self._ready = threading.Condition()
        self._started = False

    def map(
        self,
        call: Callable[[Item], Result],
        items: Sequence[Item],
        fail: Fail[Item, Result],
    ) -> list[Result]:
        """``call(item)`` for each item, in order; ``fail(item, code, message)`` for one
        that did not start within the deadline or raised. Blocks until all are done."""
        if not items:
            return []
        batch = _Batch(call, items, fail)
        batch.deadline = time.monotonic() + self.wait
        with self._ready:
            if not self._started:  # on first use: an unused signer starts no threads
                self._started = True
                for number in range(self.threads):
                    name = f"s3sign-store-{number}"
                    threading.Thread(target=self._work, name=name, daemon=True).start()
            self._waiting.append(batch)
            self._ready.notify(len(items))
        batch.done.wait()
        return list(batch.results)

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                batch = self._waiting[0]
                index = batch.next
                batch.next += 1
                if batch.next == len(batch.items):
                    self._waiting.popleft()  # all of its calls started
                else:
                    self._waiting.rotate(-1)  # the next call comes from the next request
            batch.run(index)


def one(call: Callable[[Item], Result], item: Item, fail: Fail[Item, Result]) -> Result:
    """``call(item)``; an exception it did not expect is logged and becomes that item's
    ``internal_error``."""
    try:
        return call(item)
    except Exception:
        log.exception("internal error on one file of a batch")
        return fail(item, "internal_error", "the server failed on this file; see its log")
