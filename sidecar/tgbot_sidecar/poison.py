"""Poison updates: give up on an update the dispatcher keeps failing, so its chat moves on.

Telegram delivers a chat's updates in order and redelivers a failed one, so with
``handle_in_background=False`` an update whose handler always fails would block its chat
forever. The sidecar counts failed attempts per ``update_id`` and gives up after
``--max-delivery-attempts`` (the gateway then answers 200 and writes a dead letter).

Only failures that say something about *this* update are counted, so an outage never turns
into a pile of dead letters:

- counted: the dispatcher answered 5xx, did not answer in time, or dropped the connection
  after it got the update - it saw the update and failed on it;
- never counted: it could not be reached (the bot is down or restarting: it never saw the
  update), or it answered 4xx/3xx (a misconfiguration such as a wrong path: every update
  would fail alike);
- not counted either while *another* update has failed within ``horizon`` seconds (and has
  not succeeded since): then the failures are not specific to one update (a database down,
  a bad deploy), so every failing update waits instead of being given up.

Memory is bounded like the dedup window: at most ``max_entries`` failing updates (the oldest
attempt is forgotten first), and entries not retried within ``horizon`` are pruned. The
counts are per process: with several replicas each counts the attempts it saw.
"""

from __future__ import annotations

from collections import OrderedDict

from . import metrics as m

#: Failure kinds that mean "the dispatcher saw this update and failed on it".
COUNTED = frozenset({m.UPSTREAM_5XX, m.UPSTREAM_TIMEOUT, m.UPSTREAM_RESET})


class DeliveryAttempts:
    __slots__ = ("failing", "horizon", "limit", "max_entries")

    def __init__(self, limit: int, horizon: float = 600.0, max_entries: int = 100_000) -> None:
        self.limit = limit  # 0: never give up
        self.horizon = horizon
        self.max_entries = max_entries
        # update_id -> (counted attempts, time of its last failure); ordered by that time, so
        # the newest failure is at the end and pruning stops at the first fresh entry.
        self.failing: OrderedDict[int, tuple[int, float]] = OrderedDict()

    def failed(self, update_id: int, outcome: tuple[str, str], now: float) -> int:
        """Record a failed attempt; the counted attempts when it is time to give up, else 0."""
        failing = self.failing
        count = failing.pop(update_id, (0, 0.0))[0]
        if outcome in COUNTED and not self._another_failing(now):
            count += 1
            if 0 < self.limit <= count:
                return count
        failing[update_id] = (count, now)
        if len(failing) > self.max_entries:
            failing.popitem(last=False)
        return 0

    def succeeded(self, update_id: int) -> None:
        self.failing.pop(update_id, None)

    def _another_failing(self, now: float) -> bool:
        # The update itself was popped, so the newest entry is another update's.
        failing = self.failing
        return bool(failing) and now - failing[next(reversed(failing))][1] < self.horizon

    def prune(self, now: float) -> None:
        failing = self.failing
        while failing:
            oldest = next(iter(failing))
            if now - failing[oldest][1] < self.horizon:
                break
            del failing[oldest]

    def __len__(self) -> int:
        return len(self.failing)
