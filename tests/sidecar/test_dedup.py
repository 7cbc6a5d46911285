"""The deduplicator's memory: capped, oldest first."""

from __future__ import annotations

from tgbot_sidecar.dedup import Deduplicator


def test_cap_evicts_the_oldest_and_prune_stops_at_a_fresh_entry():
    dedup = Deduplicator(window=10, max_entries=3)
    for update_id in range(5):
        assert dedup.begin(update_id)
        dedup.finish(update_id, 0, float(update_id))
    assert len(dedup) == 3
    assert not dedup.is_done(1, 5.0)
    assert dedup.is_done(2, 5.0)
    # A repeated success moves to the back.
    dedup.begin(2)
    dedup.finish(2, 0, 6.0)
    dedup.prune(14.5)  # 3 (t=3) and 4 (t=4) expired; 2 (t=6) is fresh
    assert len(dedup) == 1
    assert dedup.is_done(2, 14.5)
