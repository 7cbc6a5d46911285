"""gc_freeze with the real collector: what a full collection found alive is frozen (a cycle dropped
afterwards outlives the next full collection), young garbage is still collected, and once the frozen
objects grew by the sweep fraction a later full collection walks everything again."""

from __future__ import annotations

import gc
import itertools
import re
import weakref
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest

from tgbot_operator.gc_freeze import PAUSE_BUCKETS, GcFreezer
from tgbot_operator.metrics import Metrics


class Node:
    """A reference cycle (``self.me = self``) that only the cycle collector frees."""

    def __init__(self) -> None:
        self.me = self


def cycle() -> tuple[Node, weakref.ref[Node]]:
    node = Node()
    return node, weakref.ref(node)


@pytest.fixture
def freezer() -> Iterator[GcFreezer]:
    """Installed, with automatic collections off: only the test's own ``gc.collect()`` calls run, so
    that allocating the test's objects (in a process already holding the suite's hundreds of
    thousands) does not trigger full collections - and with them an early sweep - of its own."""
    was_enabled = gc.isenabled()
    gc.disable()
    f = GcFreezer()
    try:
        assert f.install()
        yield f
    finally:
        f.uninstall()
        if was_enabled:
            gc.enable()


def test_install_freezes_what_is_alive_and_uninstall_gives_it_back() -> None:
    f = GcFreezer()
    assert f.install()
    try:
        assert f._on_collection in gc.callbacks
        assert gc.get_freeze_count() > 1000  # this interpreter's modules, pytest's objects
        assert f.frozen_after_walk is not None  # (some frozen objects were freed since)
        # (other threads may free frozen objects meanwhile: by reference counting, gc or not)
        assert 0 <= f.frozen_after_walk - gc.get_freeze_count() < max(1000, f.frozen_after_walk // 20)
    finally:
        f.uninstall()
    assert gc.get_freeze_count() == 0
    assert f._on_collection not in gc.callbacks


def test_a_cycle_alive_at_a_full_collection_is_frozen_young_garbage_is_not(freezer: GcFreezer) -> None:
    old, old_ref = cycle()
    gc.collect()  # finds `old` alive: frozen
    young, young_ref = cycle()
    del old, young
    gc.collect()
    assert young_ref() is None  # made and dropped between full collections: collected
    assert old_ref() is not None  # frozen: the full collection did not walk it


def test_growth_by_the_sweep_fraction_gives_everything_back_to_the_next_full_collection(
    freezer: GcFreezer,
) -> None:
    old, old_ref = cycle()
    gc.collect()
    del old
    base = freezer.frozen_after_walk
    assert base is not None
    kept = [[i] for i in range(int(base * freezer.sweep_growth) + 10_000)]  # alive: real growth
    gc.collect()  # sees the growth: unfreezes, so that the next full collection walks it all
    assert gc.get_freeze_count() == 0
    assert old_ref() is not None
    assert freezer.sweeps == 0
    gc.collect()
    assert old_ref() is None  # the sweep freed the cycle that had been frozen
    assert freezer.sweeps == 1
    assert freezer.frozen_after_walk is not None
    assert freezer.frozen_after_walk >= len(kept)
    assert gc.get_freeze_count() >= len(kept)
    del kept


def test_no_sweep_while_the_frozen_objects_stay_below_the_growth(freezer: GcFreezer) -> None:
    old, old_ref = cycle()
    gc.collect()
    del old
    for _ in range(5):
        gc.collect()
    assert freezer.sweeps == 0
    assert old_ref() is not None


def test_pauses_are_timed_by_generation() -> None:
    ticks = itertools.count()
    f = GcFreezer(clock=lambda: next(ticks) * 0.003)  # every collection "takes" 3 ms
    assert f.install()
    try:
        gc.collect(0)
        gc.collect(1)
        gc.collect()
    finally:
        f.uninstall()
    for generation in (0, 1, 2):
        p = f.pauses[generation]
        assert p.count >= 1
        assert p.total_s == pytest.approx(0.003 * p.count)
        assert p.longest_s == pytest.approx(0.003)
        buckets = p.cumulative()
        assert [bound for bound, _ in buckets] == [*map(str, PAUSE_BUCKETS), "+Inf"]
        assert buckets[0][1] == 0
        assert buckets[1] == ("0.005", p.count)
        assert buckets[-1][1] == p.count


def test_the_metrics_read_the_freezer(freezer: GcFreezer) -> None:
    metrics = Metrics()
    metrics.watch_gc(freezer)
    gc.collect()
    sample = metrics.registry.get_sample_value
    full = freezer.pauses[2].count
    assert sample("tgbot_operator_gc_pause_seconds_count", {"generation": "2"}) == full
    assert sample("tgbot_operator_gc_pause_seconds_bucket", {"generation": "2", "le": "+Inf"}) == full
    high = gc.get_freeze_count()  # frozen objects are only freed meanwhile (no collection runs)
    frozen = sample("tgbot_operator_gc_frozen_objects")
    assert frozen is not None
    assert gc.get_freeze_count() <= frozen <= high
    assert sample("tgbot_operator_gc_sweeps_total") == 0
    assert "tgbot_operator_gc_frozen_objects" in generate_latest(metrics.registry).decode()
    assert re.fullmatch(r"GcFreezer\(frozen=\d+, sweeps=0\)", repr(freezer))
