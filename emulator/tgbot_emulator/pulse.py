"""A broadcast wake-up: every waiter present when it fires wakes once."""

from __future__ import annotations

import asyncio


class Pulse:
    """Unlike asyncio.Event it never stays set, so a waiter can't spin on a stale signal.

    Callers check their condition first and then wait; with no ``await`` between the
    check and :meth:`wait` no firing can be missed in a single-threaded loop.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float | None = None) -> bool:
        """True if fired, False if ``seconds`` passed first (None: wait for ever)."""
        event = self._event
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        return True
