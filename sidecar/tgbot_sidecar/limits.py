"""The bounds of every webhook connection: sizes, deadlines and how many there may be."""

from __future__ import annotations

from typing import NamedTuple

from .settings import Settings


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
        # later (always at least that far away) is never missed and the timer is never re-armed.
        return min(self.head_timeout, self.body_timeout, self.idle_timeout, self.send_timeout)
