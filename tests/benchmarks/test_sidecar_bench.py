"""Smoke runs of the sidecar benchmark: it works end to end and measures something. Never speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import sidecar, sidecar_runs, tools
from benchmarks.loadgen import Requests
from benchmarks.processes import Group
from benchmarks.setups import start

pytestmark = pytest.mark.slow


def test_every_setup_forwards_without_errors(tmp_path: Path):
    setups = ["sidecar-unix", "sidecar-tcp", "naive-aiohttp", "aiogram-alone"]
    if tools.nginx() is not None:
        setups.append("nginx")
    data = sidecar.main(
        ["--loadgen", "python", "--rounds", "1", "--duration", "1", "--warmup", "0.3", "--connections", "8",
         "--upstreams", "trivial", "aiogram", "--setups", *setups, "--no-open-loop",
         "--results", str(tmp_path)]
    )  # fmt: skip
    assert len(data["closed"]) == 2 * len(setups)
    for row in data["closed"]:
        assert row["non_2xx"] == 0, row
        assert row["rps"]["median"] > 0, row
        assert row["bot_us"]["median"] > 0, row
        if row["setup"] != "aiogram-alone":
            assert row["hop_us"]["median"] > 0, row
    assert list(tmp_path.glob("sidecar-*.json"))


def test_open_loop_keeps_its_rate(tmp_path: Path):
    with Group(tmp_path) as group:
        running = start("sidecar-unix", "trivial", group, tmp_path / "w")
        result = sidecar_runs.load("python", running.url, 10, 2.0, 1, rate=200)
    assert result["mode"] == "open"
    assert result["errors"] == 0
    assert result["non_2xx"] == 0
    assert result["requests"] == 400


def test_each_request_has_its_own_update_id():
    """The sidecar answers a repeated update_id without forwarding it: that would flatter a hop."""
    requests = Requests("x", "/webhook", 5, "s")
    bodies = [requests.next().split(b"\r\n\r\n", 1)[1] for _ in range(3)]
    assert [json.loads(b)["update_id"] for b in bodies] == [6, 7, 8]
