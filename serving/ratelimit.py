"""Per-key request rates: a token bucket per API key, in memory and per process.

A key may spend `burst` requests at once and then `rate` a second; a request over that waits for
`retry_after` seconds. Only keys that authenticated get a bucket, so the table is as small as the key list.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """One token bucket per key, refilled at `rate` tokens a second up to `burst`; `rate` 0 switches it off.

    Not locked: `take` runs on the event loop (the auth dependency is async), one call at a time.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """Spend one of `key`'s tokens: 0.0 when there was one, else the seconds until there will be one."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate
