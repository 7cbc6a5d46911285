"""``--bot-api-rate-limit``: at most N requests per second to one Bot API server, whichever bot
makes them. For self-hosted ``telegram-bot-api`` servers (and polite neighbours of
api.telegram.org): 10,000 bots checking and registering are 10,000 clients of one server.

One :class:`RateLimiter` per server (``deps.Deps.rate_limiter``), shared by every worker, profile
pass and finalizer talking to it. It is a token bucket written as GCRA (the theoretical arrival
time): each call reserves the next free slot before it waits, so waiters go in the order they
came and none is starved; up to one second's worth of calls may go at once after a quiet spell.
No I/O; the event loop's clock (virtual time in tests).
"""

from __future__ import annotations

import asyncio


class RateLimiter:
    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = rate
        self.interval = 1.0 / rate
        #: How many calls may go at once: one second's worth (at least one).
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tat: float | None = None  # when the bucket is empty again (theoretical arrival time)

    def __repr__(self) -> str:
        return f"RateLimiter({self.rate:g}/s)"

    def reserve(self, now: float) -> float:
        """Take the next slot; how long to wait for it from ``now`` (0: go)."""
        tat = now if self._tat is None else max(self._tat, now)
        allowed_at = tat - (self.burst - 1.0) * self.interval
        self._tat = tat + self.interval
        return max(0.0, allowed_at - now)

    async def acquire(self) -> float:
        """Wait for a slot; the seconds waited."""
        delay = self.reserve(asyncio.get_running_loop().time())
        if delay > 0:
            await asyncio.sleep(delay)
        return delay
