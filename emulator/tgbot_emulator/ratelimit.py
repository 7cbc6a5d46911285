"""A token bucket for the optional global Bot API rate limit."""

from __future__ import annotations

import math
import time


class TokenBucket:
    def __init__(self, rate_per_second: float, burst: float | None = None) -> None:
        self._rate = rate_per_second
        self._capacity = burst if burst is not None else max(1.0, rate_per_second)
        self._tokens = self._capacity
        self._updated = time.monotonic()

    def take(self) -> int | None:
        """None if allowed; otherwise whole seconds to wait (Telegram's retry_after)."""
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / self._rate))
