"""Smoke run of the operator scale benchmark: all Ready, every figure of issue 15 measured and judged,
a restart re-registers nothing, no leaks; and the call-log arithmetic the figures rest on."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import operator_scale, scale_apiserver, scale_botapi, scale_report, scale_run
from benchmarks.scale_botapi import Call
from tests.support import Cluster


@pytest.mark.slow
async def test_ten_bots(cluster: Cluster, tmp_path: Path):
    flags = "--bots 10 --check-interval 20s --token-check-interval 5s --restart-quiet 3 --timeout 120"
    args = operator_scale.parse([*flags.split(), "--profile"])
    (result,) = await operator_scale.run(cluster.env, tmp_path, args)
    assert result["ready"] == 10
    assert result["all_ready_seconds"] is not None
    assert result["all_ready_after_last_create_s"] is not None
    assert result["calls_per_bot_registration"].get("setWebhook") == 1
    # Every bot declared a profile: the first pass applied it (setMyCommands once per bot).
    assert result["calls_per_bot_registration"].get("setMyCommands") == 1
    # kube-apiserver's own count was read: registering writes status and creates the webhook Secret.
    assert result["apiserver_registration_per_bot"].get("PATCH telegrambots/status", 0) >= 1
    assert result["apiserver_registration_per_bot"].get("POST secrets", 0) >= 1
    assert result["per_bot"]["cpu_ms_registration"] > 0
    assert result["per_bot"]["api_requests_registration"] > 0
    assert result["per_bot"]["api_requests_steady_per_interval"] >= 0
    assert result["steady_seconds"] == 20  # one check interval by default
    # The changed tokens were picked up (by a successful call with the new one).
    assert len(result["token_pickup_s"]) == 3
    assert None not in result["token_pickup_s"]
    restart = result["restart"]
    # The restart was measured: every bot checked by the new process, nothing re-registered.
    assert restart["bots_checked"] == 10
    assert restart["checks_per_bot_max"] >= 1
    assert restart["spread"]["calls"] == 10
    assert restart["spread"]["max_per_second"] >= 1
    assert restart["changing_calls"] == {}
    # The bot's identity comes back from status (its keyed identityHash): no getMe either.
    assert "getMe" not in result["calls_per_bot_restart"]
    assert result["ready_after_restart"] == 10
    # The operator's full collections were read from its metrics (the new process's start-up one).
    assert result["gc_full"]["restart"]["count"] >= 1
    assert result["token_scan_leaks"] == 0
    # Bot tokens (and the 3 replaced ones), their secret halves and the webhooks' secret tokens.
    assert result["token_scan"]["secrets"] >= 30
    table = scale_report.render([result])
    assert "PASS" in table
    assert "targets met" in table
    assert "operator full GCs" in table


def test_sizes_take_commas_and_spaces():
    assert operator_scale.parse(["--bots", "1000,3000"]).bots == [1000, 3000]
    assert operator_scale.parse(["--sizes", "10", "20", "--huge"]).bots == [10, 20, 10_000]


def test_restart_cost_counts_checks_until_half_an_interval_after_the_first():
    logs = {
        1: [
            Call("getWebhookInfo", 90.0, 200),
            Call("getWebhookInfo", 101.0, 200),
            Call("getWebhookInfo", 108.0, 200),
        ],
        2: [Call("getWebhookInfo", 104.0, 200), Call("getWebhookInfo", 175.0, 200)],  # 175: the next period
        3: [Call("getWebhookInfo", 104.5, 200), Call("setMyName", 105.0, 200)],
    }
    cost = scale_botapi.restart_cost(logs, stopped_at=100.0, interval=60.0)
    assert cost["bots_checked"] == 3
    assert cost["checks_per_bot_max"] == 2  # bot 1 checked twice within 30 s of its first check
    assert cost["changing_calls"] == {"setMyName": 1}
    assert cost["spread"]["max_per_second"] == 2  # 104.0 and 104.5
    assert cost["first_check_after_s"] == 1.0


def test_apiserver_counts_split_watches_from_requests_and_subtract_our_creates():
    line = 'apiserver_request_total{{code="{code}",resource="{res}",subresource="{sub}",verb="{verb}"}} {n}'
    text = "\n".join(
        line.format(code=code, res=res, sub=sub, verb=verb, n=n)
        for code, res, sub, verb, n in [
            ("201", "secrets", "", "POST", 15),
            ("200", "telegrambots", "status", "PATCH", 7),
            ("200", "secrets", "", "WATCH", 2),
            ("429", "secrets", "", "GET", 1),
            ("200", "leases", "", "PUT", 99),  # not the operator's
        ]
    )
    counts = scale_apiserver.parse(text).without("POST", "secrets", 10)
    assert counts.by_name(watches=False) == {
        "GET secrets": 1,
        "PATCH telegrambots/status": 7,
        "POST secrets": 5,
    }
    assert counts.by_name(watches=True) == {"WATCH secrets": 2}
    assert counts.errors() == {"429 GET secrets": 1}


def test_registration_leaves_out_the_checks_of_bots_already_ready():
    # 100 bots; in the steady window (60 s) they made 100 status PATCHes: 1/60 per bot-second.
    # While the last ones registered, the early ones were Ready for 6,000 bot-seconds in all:
    # 100 of the window's PATCHes were their checks, not registration.
    window = {"PATCH telegrambots/status": 300, "POST secrets": 100}
    steady = {"PATCH telegrambots/status": 100}
    net = scale_run.net_of_ready_bots(window, steady, steady_windows=6000 / (60 * 100))
    assert net == {"PATCH telegrambots/status": 200.0, "POST secrets": 100.0}
    assert scale_run.net_of_ready_bots({"GET secrets": 1}, {"GET secrets": 50}, 1.0) == {"GET secrets": 0.0}


@pytest.mark.parametrize(
    ("requests", "checks", "meets"),
    [(0.99, 0.99, True), (1.006, 1.005, True), (1.27, 1.04, False), (1.0, 0.5, True), (1.3, 0.5, False)],
)
def test_steady_requests_are_judged_per_interval_or_per_check(requests: float, checks: float, meets: bool):
    (figure,) = [f for f in scale_report.FIGURES if f.label.startswith("steady: API requests/bot")]
    result = {
        "per_bot": {"api_requests_steady_per_interval": requests},
        "steady": {"calls_per_bot_per_interval": {"getWebhookInfo": checks}},
    }
    assert figure.meets(result) is meets
    assert figure.value(result).startswith(f"{requests:g} (")
