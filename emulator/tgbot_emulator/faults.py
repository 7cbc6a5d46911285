"""Injected failures for Bot API calls: the next N matching calls fail a given way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["429", "500", "502", "drop"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "drop")


@dataclass
class Fault:
    kind: FaultKind
    remaining: int
    method: str | None = None  # lower-cased Bot API method; None matches any
    bot_id: int | None = None
    retry_after: int | None = None

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
        for fault in self._faults:
            if fault.matches(bot_id, method):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def snapshot(self) -> list[Fault]:
        return list(self._faults)
