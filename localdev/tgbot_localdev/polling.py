"""Waiting until something holds: the one polling helper of localdev, its tests and the demo.

``wait_for`` for synchronous callers (the pod cluster, the pod tests), ``until`` for coroutines
(the host demo). Both return the first truthy result of the probe and fail naming what they waited
for and what the probe last said, so that a timeout reads as a sentence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class WaitTimeoutError(RuntimeError):
    """The condition did not hold in time."""


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, interval: float = 1.0) -> Any:
    """Call ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r:.300})")


async def until(
    what: str, probe: Callable[[], Awaitable[Any]], timeout: float = 60.0, interval: float = 0.3
) -> Any:
    """``wait_for`` for a coroutine probe."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r:.300})")
