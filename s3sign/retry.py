"""The retry policy both sides use: which answers are worth asking again, and how long
to wait before each retry (the push's PUTs and backend calls, the server's S3 calls)."""

from __future__ import annotations

import random

# Timeouts, throttling and the server errors S3 and proxies answer while overloaded.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def backoff(attempt: int, base: float = 0.5, cap: float = 20.0) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): exponential, "equal jitter".

    Half the delay is fixed and half random: retries still spread out, and a
    run of them waits at least half the nominal total (full jitter may retry at
    once, which never helps a server that is restarting).
    """
    delay: float = min(cap, base * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - not crypto
