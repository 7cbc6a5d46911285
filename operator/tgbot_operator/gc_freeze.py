"""Full garbage collections that walk only what is new: what one found alive is frozen.

At 10,000 TelegramBots the operator holds ~1.6 million objects CPython's cycle collector tracks
(kopf's kept bodies and per-daemon machinery, our workers). A full (generation 2) collection walks
all of them with the event loop stopped: 1.3-1.4 s each, about every 45 s in steady state and 54
times (63 s) while 10,000 bots registered - and they collected nothing: that state is long-lived,
and reference counting frees it when it goes (docs/benchmarks.md, "Operator at 10,000 bots").

So at the end of each full collection what it found alive is frozen (:func:`gc.freeze`: moved to
the permanent generation, which collections skip) and the next one walks only what is newer. An
object frozen alive that later becomes part of a reference cycle is not collected while frozen:
when the frozen count has grown by :data:`SWEEP_GROWTH` since the last full walk, the collector is
given everything back (:func:`gc.unfreeze`) and its next full collection - at its own time - walks
it all and frees such cycles. That bounds frozen garbage the way CPython bounds its own unexamined
old objects (a quarter of those it examined last), and a stable set of bots never pays a full walk.

Only ``gc`` calls inside the collector's callback: it runs in whichever thread allocated, in the
middle of anything, so it takes no lock (no metric objects here - :mod:`.metrics` reads
:class:`GcFreezer`'s plain counters when scraped). A collection cannot run inside the callback
(CPython ignores it), hence the unfreeze-and-wait instead of a collect. On a free-threaded CPython
nothing is installed. With an incremental collector (CPython builds whose automatic collections
never report generation 2) nothing is ever frozen.
"""

from __future__ import annotations

import bisect
import gc
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Let the collector walk everything again once the frozen objects grew by this fraction.
SWEEP_GROWTH = 0.25
#: Upper bounds (seconds) of the pause histogram's buckets.
PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GENERATIONS = (0, 1, 2)


@dataclass
class Pauses:
    """A histogram of one generation's collections, kept as plain numbers."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(PAUSE_BUCKETS) + 1))
    total_s: float = 0.0
    count: int = 0
    longest_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(PAUSE_BUCKETS, seconds)] += 1
        self.total_s += seconds
        self.count += 1
        self.longest_s = max(self.longest_s, seconds)

    def cumulative(self) -> list[tuple[str, int]]:
        """Prometheus' ``le`` buckets: counts at or below each bound, then ``+Inf``."""
        out, running = [], 0
        for bound, n in zip([*map(str, PAUSE_BUCKETS), "+Inf"], self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out


def supported() -> bool:
    """False on a free-threaded CPython (freezing there stops the world: not from a callback)."""
    is_gil_enabled: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return is_gil_enabled is None or is_gil_enabled()


class GcFreezer:
    """Installed with :meth:`install`, gone with :meth:`uninstall` (which unfreezes everything)."""

    def __init__(self, *, sweep_growth: float = SWEEP_GROWTH, clock: Callable[[], float] = time.perf_counter):
        self.sweep_growth = sweep_growth
        self._clock = clock
        self._started: float | None = None
        #: The frozen count right after the last full walk (None: none yet, so the next one is).
        self.frozen_after_walk: int | None = None
        self._walk_next = False
        #: Full walks after the first: collections given every object back by the growth rule.
        self.sweeps = 0
        self.pauses: Mapping[int, Pauses] = {g: Pauses() for g in GENERATIONS}

    def __repr__(self) -> str:
        return f"GcFreezer(frozen={gc.get_freeze_count()}, sweeps={self.sweeps})"

    def install(self) -> bool:
        """Start freezing, with a full collection now: what is alive at start-up (the modules
        imported, the settings) is frozen at once. False (and nothing done) where it is not
        :func:`supported`."""
        if not supported():
            return False
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)
        gc.collect()
        return True

    def uninstall(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        gc.unfreeze()
        self.frozen_after_walk, self._walk_next = None, False

    def _on_collection(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        generation = info["generation"]
        if self._started is not None and generation in self.pauses:
            self.pauses[generation].observe(self._clock() - self._started)
        self._started = None
        if generation == 2:
            self._after_full_collection()

    def _after_full_collection(self) -> None:
        gc.freeze()
        frozen = gc.get_freeze_count()
        if self.frozen_after_walk is None or self._walk_next:
            # This collection walked every object (the first, or the one after an unfreeze).
            self.sweeps += self._walk_next
            self._walk_next = False
            self.frozen_after_walk = frozen
        elif frozen > self.frozen_after_walk * (1 + self.sweep_growth):
            gc.unfreeze()
            self._walk_next = True
