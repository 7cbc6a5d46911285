"""The clock of the emulator's delays, deadlines and intervals: the event loop's (``loop.time()``).

Each of them ends in an asyncio timer (a retry's backoff, ``waitDelivered``'s deadline, a
long poll, a flood wait), so the time it is measured in must be the timers' own. In production
that is ``time.monotonic()`` anyway; a test on a virtual clock (looptime) then runs retries and
timeouts without waiting for them. Wall-clock stamps (``date``, ``set_at``) stay ``time.time()``.
"""

from __future__ import annotations

import asyncio


def now() -> float:
    """Seconds on the running event loop's clock (only meaningful as a difference)."""
    return asyncio.get_running_loop().time()
