"""Suppression of redelivered updates.

Telegram redelivers an update when it did not see our 200 in time. Once the dispatcher handled
an update_id successfully, a redelivery within the window is answered 200 with an empty body:
the webhook reply must not be executed twice. A redelivery arriving while the first delivery
is still being forwarded waits for that outcome instead of being forwarded in parallel.

The memory is per process; with several replicas a redelivery may reach another pod.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

#: A waiter learns the status the first delivery ended with (0 means "succeeded").
Waiter = Callable[[int], None]


class Deduplicator:
    __slots__ = ("_done", "_in_flight", "max_entries", "window")

    def __init__(self, window: float, max_entries: int = 200_000) -> None:
        self.window = window
        self.max_entries = max_entries
        # update_id -> completion time; insertion order is completion order, so the oldest
        # entries are at the front and pruning stops at the first fresh one. An OrderedDict, not
        # a dict: removing a dict's first key with next(iter(d)) scans the deleted slots at the
        # front, which at the cap made every finish slow; popitem(last=False) is O(1).
        self._done: OrderedDict[int, float] = OrderedDict()
        self._in_flight: dict[int, list[Waiter]] = {}

    def is_done(self, update_id: int, now: float) -> bool:
        finished = self._done.get(update_id)
        return finished is not None and now - finished < self.window

    def begin(self, update_id: int) -> bool:
        """Claim ``update_id``; False when it is already in flight (then :meth:`wait` on it)."""
        if update_id in self._in_flight:
            return False
        self._in_flight[update_id] = []
        return True

    def wait(self, update_id: int, waiter: Waiter) -> None:
        self._in_flight[update_id].append(waiter)

    def finish(self, update_id: int, status: int, now: float) -> None:
        """Record the outcome (``status`` 0 on success) and wake the parked duplicates."""
        waiters = self._in_flight.pop(update_id, ())
        if status == 0 and self.window > 0:
            done = self._done
            if update_id in done:
                done.move_to_end(update_id)
            done[update_id] = now
            if len(done) > self.max_entries:
                done.popitem(last=False)
        for waiter in waiters:
            waiter(status)

    def prune(self, now: float) -> None:
        done = self._done
        while done:
            oldest = next(iter(done))  # O(1) on an OrderedDict: the head of its linked list
            if now - done[oldest] < self.window:
                break
            del done[oldest]

    def __len__(self) -> int:
        return len(self._done)
