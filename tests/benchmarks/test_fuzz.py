"""Smoke run of the bad-input fuzz: no 5xx, nothing invalid or refused forwarded, valid ones pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import fuzz, fuzz_cases

pytestmark = pytest.mark.slow


def test_fuzz_finds_nothing(tmp_path: Path):
    result = fuzz.run(400, tmp_path)
    assert result["requests"] == 400
    assert result["failures"] == []
    assert result["sidecar_alive"]
    assert result["sidecar_tracebacks"] == 0, result["sidecar_log_tail"]
    assert result["invalid_forwarded"] == []
    assert result["refused_but_forwarded"] == []
    assert result["valid_not_forwarded"] == []
    assert result["ok"]


def test_deeply_nested_json_is_a_400_not_a_dropped_connection(tmp_path: Path):
    result = fuzz.run(0, tmp_path, cases=(fuzz_cases.nested_json_case(),))
    assert result["statuses"] == {"400": 1}
    assert result["sidecar_tracebacks"] == 0, result["sidecar_log_tail"]


def test_slow_and_non_reading_clients_leave_rss_flat_and_updates_answered(tmp_path: Path):
    result = fuzz.run(0, tmp_path, abusers=50, abuse_seconds=4, timeouts=0.5)
    assert result["valid_sent"] > 0
    assert result["valid_answered_200"] == result["valid_sent"], result["valid_statuses"]
    assert result["rss_growth_mb"] <= 25, (result["rss_start_mb"], result["rss_peak_mb"])
    # Only deadlines end these clients (they never stop sending, or never send): all were cut off.
    for kind in ("slow-head", "slow-body", "trailer-drip", "silent"):
        assert result["abusers_closed_by_sidecar"].get(kind, 0) > 0, kind
    assert result["abusers_by_kind"]["non-reader"] > 0
    assert result["sidecar_alive"]
    assert result["sidecar_tracebacks"] == 0, result["sidecar_log_tail"]
    assert result["ok"]
