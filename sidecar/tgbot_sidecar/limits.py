"""The bounds of every webhook connection: sizes, deadlines and how many there may be."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple

from .settings import Settings

NEVER = float("inf")


class Limits(NamedTuple):
    """The bounds of every connection (flags of the same names)."""

    max_connections: int = 1000
    max_head_bytes: int = 16 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 120.0
    send_timeout: float = 30.0

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(s.max_connections, s.max_head_bytes, s.head_timeout, s.body_timeout,
                   s.idle_timeout, s.send_timeout)  # fmt: skip

    @property
    def tick(self) -> float:
        # A connection's timer never sleeps longer than the shortest timeout, so a deadline set
        # later (always at least that far away) is never missed (see Deadline).
        return min(self.head_timeout, self.body_timeout, self.idle_timeout, self.send_timeout)


class Deadline:
    """A connection's one deadline, watched by a timer that never sleeps longer than ``tick``.

    Setting a deadline is an assignment: the timer is re-armed only when it fires, so a
    connection that gets a new deadline per request costs no timer per request. Every timeout
    is at least ``tick``, so a deadline set later is never before the timer's next check.
    """

    __slots__ = ("_expire", "_loop", "_tick", "_timer", "at")

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float, expire: Callable[[], None]) -> None:
        self._loop = loop
        self._tick = tick
        self._expire = expire
        self._timer: asyncio.TimerHandle | None = None
        self.at = NEVER

    def set(self, timeout: float) -> None:
        now = self._loop.time()
        self.at = now + timeout
        if self._timer is None:
            self._timer = self._loop.call_at(now + min(timeout, self._tick), self._fire)

    def clear(self) -> None:
        self.at = NEVER  # the timer stops at its next check; set() arms a new one

    def cancel(self) -> None:
        self.at = NEVER
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if self.at == NEVER:
            return
        now = self._loop.time()
        if now < self.at:
            self._timer = self._loop.call_at(min(self.at, now + self._tick), self._fire)
            return
        self.at = NEVER
        self._expire()
