"""Smoke run of the operator scale benchmark: all Ready, a restart re-registers nothing, no leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import operator_scale
from tests.support import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_ten_bots(cluster: Cluster, tmp_path: Path):
    args = operator_scale.parse(
        ["--bots", "10", "--steady", "3", "--restart-quiet", "4", "--timeout", "120", "--profile"]
    )
    (result,) = await operator_scale.run(cluster.env, tmp_path, args)
    assert result["ready"] == 10
    assert result["all_ready_seconds"] is not None
    assert result["calls_per_bot_registration"].get("setWebhook") == 1
    assert "setWebhook" not in result["calls_per_bot_restart"]
    # The bot's identity comes back from status (its keyed identityHash): no getMe either.
    assert "getMe" not in result["calls_per_bot_restart"]
    assert result["ready_after_restart"] == 10
    assert result["token_scan_leaks"] == 0
    # Every bot declared a profile: the first pass applied it (setMyCommands once per bot).
    assert result["calls_per_bot_registration"].get("setMyCommands") == 1
    # kube-apiserver's own count was read (the session's cluster is shared: no bound here).
    assert result["apiserver_requests_per_bot_per_interval_total"] >= 0
    assert "all_ready_after_last_create_s" in result
    # Bot tokens, their secret halves and the webhooks' secret tokens: 3 per bot.
    assert result["token_scan"]["secrets"] >= 30
