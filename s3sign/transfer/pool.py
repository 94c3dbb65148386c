"""The worker pool that moves bytes, waiting that Ctrl-C can cut short, and the store's
health as the transfers on the pool find it.

One pool of daemon threads does every upload (whole files and parts alike), so that
``--concurrency`` bounds the connections in flight whatever the mix; ``pull`` has one too.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, wait
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerPool:
    """A fixed pool of daemon threads: Ctrl-C never waits for a stuck upload to end."""

    def __init__(self, workers: int, name: str) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._waiting = 0  # submitted, not yet started
        self._wake_at = -1  # wake ``wait_until_waiting`` when _waiting drops to this
        self._taken = threading.Condition()
        for index in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True).start()

    def submit(self, function: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._taken:
            self._waiting += 1
        self._tasks.put((future, function))
        return future

    def wait_until_waiting(self, limit: int) -> None:
        """Return once at most ``limit`` tasks wait for a thread."""
        with self._taken:
            self._wake_at = limit
            while self._waiting > limit:
                self._taken.wait(0.25)  # a timeout, so that Ctrl-C is seen at once
            self._wake_at = -1

    def _work(self) -> None:
        while True:
            future, function = self._tasks.get()
            with self._taken:
                self._waiting -= 1
                if self._waiting <= self._wake_at:
                    self._taken.notify()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)


def wait_for(future: Future[T]) -> T:
    """``future.result()``, waking up regularly so that Ctrl-C is seen at once."""
    while True:
        done, _ = wait([future], timeout=0.25)
        if done:
            return future.result()


def batches(items: Iterable[T], size: int, first: int | None = None) -> Iterator[list[T]]:
    """Lists of ``size`` items, taken from ``items`` as they are needed (never all at once);
    with ``first``, the first has that many, and each next four times the one before, up
    to ``size``."""
    source, length = iter(items), first or size
    while batch := list(itertools.islice(source, length)):
        yield batch
        length = min(size, 4 * length)


class StoreHealth:
    """Is S3 answering at all? Shared by every transfer of one push or pull (a circuit
    breaker)."""

    def __init__(self, concurrency: int) -> None:
        self.down = False
        self.successes = 0  # uploads (files or parts) S3 took: is it up for the others?
        self._unanswered = 0  # files in a row that failed without any answer from S3
        self._limit = max(4, concurrency)
        self._lock = threading.Lock()

    def answered(self) -> None:
        self._unanswered = 0
        self.successes += 1  # unlocked: an increment lost to a race changes nothing

    def unanswered(self) -> None:
        with self._lock:
            self._unanswered += 1
            if self._unanswered >= self._limit:
                self.down = True
