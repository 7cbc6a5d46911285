"""A dispatcher that does not serve the path it is forwarded to: one clear error, not a loop.

A bot listening on another path answers every forward 404 (or 405 when the path exists for
other methods only); Telegram would retry forever and only the metrics would show it. The
first such answer logs one ERROR line naming the dispatcher's address and the path, repeated
at most every ``log_every`` seconds while it lasts, and ``/readyz`` reports it - until a
forward succeeds, or ``hold`` seconds pass without another one: readiness takes the pod out
of its Service, and a fixed bot must get the traffic that proves it fixed.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)

NOT_SERVED = frozenset({404, 405})


class PathCheck:
    __slots__ = ("_last_seen", "_logged", "hold", "log_every", "path", "status", "where")

    def __init__(self, where: str, path: str, log_every: float = 600.0, hold: float = 30.0) -> None:
        self.where = where
        self.path = path
        self.log_every = log_every
        self.hold = hold
        self.status = 0
        self._last_seen = -math.inf
        self._logged = -math.inf

    def answered(self, status: int, now: float) -> None:
        """A non-2xx answer of the dispatcher."""
        if status not in NOT_SERVED:
            return
        self.status = status
        self._last_seen = now
        if now - self._logged >= self.log_every:
            self._logged = now
            log.error(self.problem_text(), extra={"upstream": self.where, "upstream_status": status})

    def succeeded(self) -> None:
        if self.status:
            log.info("the dispatcher serves %s again", self.path)
            self.status = 0
            self._last_seen = self._logged = -math.inf

    def problem_text(self) -> str:
        return (
            f"the dispatcher ({self.where}) answered {self.status} for POST {self.path}: "
            "is it serving that path? (the bot contract: docs/bot-contract.md)"
        )

    def problem(self, now: float) -> str | None:
        if self.status and now - self._last_seen < self.hold:
            return self.problem_text()
        return None
