"""Rate limits: a token bucket per token and per client address, in each worker process.

A bucket holds up to ``burst`` requests and refills at ``rate`` per second; a request
finding it empty is refused with 429 ``rate_limited`` and ``Retry-After`` (whole seconds
until the next one would pass). Per process and per replica, so a client spread over N
processes may make up to N times the rate (docs/deploy.md): the backend keeps no state.
The buckets of at most ``MAX_BUCKETS`` keys are kept; the least recently used go first
(a full bucket forgotten is a full bucket again: nothing is lost by it).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from s3sign.protocol import ProtocolError

MAX_BUCKETS = 100_000


class RateLimited(ProtocolError):
    """429, with the seconds to wait (``Retry-After``)."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(
            429, "rate_limited", f"too many requests from this {what}; wait {retry_after} s"
        )
        self.retry_after = retry_after


class Buckets:
    """Token buckets by key; ``rate`` 0 means no limit."""

    def __init__(
        self, what: str, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what, self.rate, self.burst, self._clock = what, rate, max(burst, 1), clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (left, at)

    def take(self, key: str) -> None:
        """Spend one request of ``key``'s bucket, or ``RateLimited``."""
        if not self.rate:
            return
        now = self._clock()
        left, at = self._buckets.pop(key, (float(self.burst), now))
        left = min(float(self.burst), left + (now - at) * self.rate)
        if left < 1:
            self._buckets[key] = (left, now)
            raise RateLimited(self.what, max(1, math.ceil((1 - left) / self.rate)))
        self._buckets[key] = (left - 1, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
