"""Smoke runs of the operator fault run: faults, a SIGKILL and Bot API outages on the session's
cluster; the API-server outage on a control plane of its own (the session's is shared)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import operator_faults, operator_outages
from benchmarks.scale_botapi import Call
from tests.support import Cluster, use_existing_cluster


def _correct(result: dict[str, Any], bots: int) -> None:
    assert result["all_ready"]
    assert result["wrong_webhook"] == []
    # Faults and outages cost retries, not registrations; the one SIGKILL may cost a second
    # registration of a bot whose setWebhook succeeded before its status was written.
    assert set(result["successful_setwebhook_per_bot"]) <= {"1", "2"}
    assert sum(result["successful_setwebhook_per_bot"].values()) == bots
    assert result["extra_setwebhook"]["duplicate"] == 0
    assert result["webhooks_left_behind"] == []
    assert result["token_scan"]["leaks"] == []
    assert result["token_scan"]["secrets"] >= 3 * bots  # bot tokens, their secret halves, secret tokens


@pytest.mark.slow
async def test_faults_converge(cluster: Cluster, tmp_path: Path):
    result = await operator_faults.run(cluster.env, tmp_path, bots=6, restart_api=False, botapi_outage_s=8)
    _correct(result, 6)
    assert "apiserver" not in result["outages"]
    for kind in ("502", "429"):
        outage = result["outages"][f"botapi_{kind}"]
        # Every bot checks every 5 s: each met the outage, and each was Ready again afterwards.
        assert outage["bots_hit"] == outage["bots"] == 6
        assert outage["failed_calls_during"] >= 6
        assert outage["all_ready_s_after_return"] is not None
    # A flood wait is waited out: no call before its retry_after ran out.
    assert result["outages"]["botapi_429"]["calls_before_retry_after"] == 0
    assert "Bot API 502" in operator_faults.render(result)


@pytest.mark.slow
@pytest.mark.skipif(
    use_existing_cluster(), reason="restarts the API server: needs a control plane of its own"
)
async def test_apiserver_outage_converges(tmp_path: Path):
    result = await operator_faults.run(None, tmp_path, bots=4, apiserver_outage_s=6, botapi_outage_s=0)
    _correct(result, 6)  # 4, then 2 created right before the outage
    outage = result["outages"]["apiserver"]
    assert outage["bots_created"] == 2
    assert outage["all_ready_s_after_return"] is not None
    # Every bot (those Ready before the outage too) talked to Telegram again after the return.
    assert outage["reconciled_s_after_return"] is not None
    assert "API server down 6s" in operator_faults.render(result)


def test_convergence_reads_the_pending_step_and_early_calls_from_the_call_log():
    logs = {
        1: [
            Call("getWebhookInfo", 10.0, 502),
            Call("getWebhookInfo", 14.0, 502),
            Call("getWebhookInfo", 22.0, 200),
        ],
        2: [
            Call("getWebhookInfo", 11.0, 429, "fault: Too Many Requests: retry after 9"),
            Call("getWebhookInfo", 15.0, 429, "fault: Too Many Requests: retry after 5"),  # 5 s early
            Call("getWebhookInfo", 20.5, 200),
        ],
    }
    found = operator_outages.convergence(logs, returned=20.0)
    assert found["bots_hit"] == 2
    assert found["failed_calls_during"] == 4
    assert found["failed_calls_after_return"] == 0
    assert found["longest_step_pending_s"] == 8.0  # bot 1: 14 -> 22
    assert found["slowest_first_retry_s"] == 2.0
    assert found["calls_before_retry_after"] == 1
