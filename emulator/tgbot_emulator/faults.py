"""Injected failures for Bot API calls: the next N matching calls fail a given way."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from . import clock

FaultKind = Literal["429", "500", "502", "drop"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "drop")


@dataclass
class Fault:
    kind: FaultKind
    remaining: int
    method: str | None = None  # lower-cased Bot API method; None matches any
    bot_id: int | None = None
    retry_after: int | None = None
    # Set: a flood wait. From the first matching call on, every matching call fails for
    # this many seconds (count is ignored) and a 429's retry_after counts down, as
    # Telegram's does (setMyName answers "retry after" thousands of seconds).
    for_seconds: float | None = None
    started_at: float | None = None

    def remaining_seconds(self, now: float) -> float:
        if self.for_seconds is None or self.started_at is None:
            return 0.0
        return self.started_at + self.for_seconds - now

    def answer_retry_after(self, now: float) -> int:
        """retry_after for this answer: the remaining flood wait, else the fixed value (default 1)."""
        if self.for_seconds is not None:
            return max(1, math.ceil(self.remaining_seconds(now)))
        return self.retry_after if self.retry_after is not None else 1

    def matches(self, bot_id: int, method: str) -> bool:
        return (self.method is None or self.method == method.lower()) and (
            self.bot_id is None or self.bot_id == bot_id
        )


class FaultQueue:
    """Faults are consumed in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.method is not None:
            fault.method = fault.method.lower()
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, bot_id: int, method: str) -> Fault | None:
        for fault in list(self._faults):
            if not fault.matches(bot_id, method):
                continue
            if fault.for_seconds is not None:
                now = clock.now()
                if fault.started_at is None:
                    fault.started_at = now
                if fault.remaining_seconds(now) > 0:
                    return fault
                self._faults.remove(fault)
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def snapshot(self) -> list[Fault]:
        return list(self._faults)
