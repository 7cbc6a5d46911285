"""Smoke runs of the no-loss reliability run on the test cluster (small sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import reliability
from tests.support import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_rotation_loses_and_repeats_nothing(cluster: Cluster, tmp_path: Path):
    result = await reliability.run(
        cluster.env, tmp_path, updates=300, chats=30, kills=0, rotations=1, seconds=8
    )
    assert result["lost_count"] == 0
    assert result["duplicates"] == 0
    assert result["exactly_once"]
    assert result["rejected_401"] == 0
    assert result["token_scan"]["leaks"] == []


async def test_bot_kills_lose_nothing(cluster: Cluster, tmp_path: Path):
    result = await reliability.run(
        cluster.env, tmp_path, updates=300, chats=30, kills=2, rotations=1, seconds=8
    )
    assert result["lost_count"] == 0
    assert result["unexpected"] == 0
    # A kill between handling and answering makes Telegram deliver again: only those may repeat.
    assert result["exactly_once_outside_kills"], result
    assert result["bot_starts"] == 3
    assert result["token_scan"]["leaks"] == []
