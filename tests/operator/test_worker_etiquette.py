"""Telegram etiquette and convergence of the worker loop: a restart costs no burst of calls, checks
spread over the interval, a failed status write is retried within the convergence target.
The in-process emulator and the fake Kubernetes of test_worker.py."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tgbot_operator.deps import Deps
from tgbot_operator.metrics import Metrics
from tgbot_operator.settings import OperatorSettings
from tgbot_operator.worker import BotWorker

from .conftest import FakeKube, Rig

PROFILE: dict[str, Any] = {
    "commands": [{"commands": [{"command": "start", "description": "Start the bot"}]}],
    "names": [{"name": "Echo"}],
    "menuButton": {"type": "web_app", "text": "Open", "url": "https://app.example.com/"},
    "defaultAdministratorRights": {"groups": {"canDeleteMessages": True}},
}


def restarted(rig: Rig) -> BotWorker:
    """A new worker (an operator restart) with the status the first one wrote."""
    rig.body["status"] = json.loads(json.dumps(rig.kube.status))
    return BotWorker(
        rig.worker.deps, body=rig.body, logger=rig.worker.logger, events=lambda *e: rig.events.append(e)
    )


async def methods(rig: Rig, since: int = 0) -> list[str]:
    return [c["method"] for c in (await rig.emulator.calls(5001))[since:]]


async def test_a_restart_costs_no_call_and_no_status_write_until_its_check_placed_in_the_interval(
    rig: Rig,
) -> None:
    await rig.worker.run_pass()
    before, patches = len(await rig.emulator.calls(5001)), rig.kube.status_patches
    fresh = restarted(rig)
    until = await fresh.run_pass()
    assert await methods(rig, before) == []  # no getMe, no getWebhookInfo, no setWebhook
    assert rig.kube.status_patches == patches  # the status it found is the status it would write
    assert rig.conditions()["Ready"]["status"] == "True"
    check = fresh.memory.next_live_check
    assert check is not None
    # Checked a moment ago: the next check not within half an interval of it, within one from now.
    assert rig.clock.now + timedelta(seconds=149) <= check <= rig.clock.now + timedelta(seconds=300)
    assert until is not None
    assert until <= check
    rig.clock.now = check
    await fresh.run_pass()
    assert await methods(rig, before) == ["getWebhookInfo"]


async def test_restarted_checks_spread_over_the_interval(rig: Rig) -> None:
    """After a long stop (the last check hours old): spread over the interval from now."""
    await rig.worker.run_pass()
    rig.body["status"] = json.loads(json.dumps(rig.kube.status))
    rig.clock.advance(3 * 3600)
    offsets = []
    for _ in range(200):
        fresh = BotWorker(rig.worker.deps, body=rig.body, logger=rig.worker.logger, events=lambda *e: None)
        assert fresh.memory.next_live_check is not None
        offsets.append((fresh.memory.next_live_check - rig.clock.now).total_seconds())
    assert 0 <= min(offsets) < 30
    assert 270 < max(offsets) <= 300
    assert sum(1 for o in offsets if o < 150) in range(70, 131)  # about half in each half


async def test_checks_of_bots_started_together_do_not_stay_together(rig: Rig) -> None:
    await rig.worker.run_pass()  # registered: the look after it placed the next check at random
    first = rig.worker.memory.next_live_check
    assert first is not None
    assert first - rig.clock.now != timedelta(seconds=300)
    rig.clock.now = first
    await rig.worker.run_pass()  # the scheduled check: the next one an interval (+-10 %) later
    second = rig.worker.memory.next_live_check
    assert second is not None
    assert timedelta(seconds=270) <= second - first <= timedelta(seconds=330)


def test_token_checks_start_at_a_random_moment_then_keep_within_the_interval(rig: Rig) -> None:
    delays = [rig.worker._token_check_delay() for _ in range(50)]
    interval = rig.worker.deps.settings.token_check_interval
    assert 0 <= delays[0] <= interval
    assert all(0.8 * interval <= d <= interval for d in delays[1:])  # a new token: seen within 30 s
    assert len(set(delays)) == 50


async def test_a_restart_with_a_profile_sends_no_setter_and_reads_it_back_later(rig: Rig) -> None:
    rig.body["spec"]["profile"] = PROFILE
    await rig.worker.run_pass()
    assert rig.conditions()["ProfileApplied"]["reason"] == "Applied"
    before, patches = len(await rig.emulator.calls(5001)), rig.kube.status_patches
    fresh = restarted(rig)
    until = await fresh.run_pass()
    assert await methods(rig, before) == []
    assert rig.kube.status_patches == patches
    assert rig.conditions()["ProfileApplied"]["reason"] == "Applied"
    assert until is not None
    assert until <= rig.clock.now + timedelta(seconds=300)
    rig.clock.advance(331)
    await fresh.run_pass()
    calls = await methods(rig, before)
    assert "getWebhookInfo" in calls
    assert sorted(m for m in calls if m != "getWebhookInfo") == [
        "getChatMenuButton",
        "getMyCommands",
        "getMyDefaultAdministratorRights",
        "getMyName",
    ]  # reads only, all in one pass


async def test_a_restart_after_a_spec_change_applies_the_new_profile(rig: Rig) -> None:
    rig.body["spec"]["profile"] = PROFILE
    await rig.worker.run_pass()
    before = len(await rig.emulator.calls(5001))
    rig.body["spec"]["profile"] = {**PROFILE, "names": [{"name": "Echo 2"}]}
    rig.body["metadata"]["generation"] = 2
    await restarted(rig).run_pass()
    calls = await methods(rig, before)
    assert calls.count("setMyName") == 1
    assert [m for m in calls if m.startswith("set")] == ["setMyName"]


async def test_a_failed_status_write_is_retried_within_the_convergence_target(rig: Rig) -> None:
    await rig.worker.run_pass()
    rig.clock.advance(300 * 12 + 100)  # a check is due and its time is to be written
    real_patch = rig.kube.patch_bot_status

    async def away(namespace: str, name: str, patch: Any) -> None:
        from tgbot_operator.kube import KubeError

        raise KubeError("cannot patch status: the API server did not answer")

    rig.kube.patch_bot_status = away  # type: ignore[method-assign]
    failing = rig.worker.deps.metrics.failing
    for _ in range(10):
        until = await rig.worker.run_pass()
        assert until is not None
        assert until - rig.clock.now <= timedelta(seconds=16 * 1.2)  # not the 30 s token check
        assert failing._value.get() == 1
        rig.clock.now = until
    rig.kube.patch_bot_status = real_patch  # type: ignore[method-assign]
    await rig.worker.run_pass()
    assert failing._value.get() == 0
    assert rig.kube.status["webhook"]["lastCheckTime"]


async def steady_patches(rig: Rig, intervals: int) -> tuple[int, int]:
    """Status patches and Bot API calls over ``intervals`` check intervals of a settled bot."""
    await rig.worker.run_pass()
    patches, calls = rig.kube.status_patches, len(await rig.emulator.calls(5001))
    end = rig.clock.now + timedelta(seconds=300 * intervals)
    while rig.clock.now < end:
        until = await rig.worker.run_pass()
        assert until is not None
        rig.clock.now = max(until, rig.clock.now + timedelta(seconds=1))
    return rig.kube.status_patches - patches, len(await rig.emulator.calls(5001)) - calls


async def test_the_profile_is_read_back_with_the_webhook_check_one_status_write_per_interval(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tgbot_operator import status

    monkeypatch.setattr(status, "CHECK_TIME_REFRESH_INTERVALS", 0)  # every check's time written
    rig.body["spec"]["profile"] = PROFILE
    patches, calls = await steady_patches(rig, 20)
    # 20 checks (+-10 %) and their status writes, the 4 profile reads riding along.
    assert 17 <= patches <= 24, patches
    assert calls <= 5 * patches
    assert calls >= 5 * 17


async def test_profile_reads_on_their_own_schedule_cost_a_second_write_per_interval(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tgbot_operator import profile_plan, status

    # What it was before the reads rode along: every interval, whenever the check came.
    monkeypatch.setattr(profile_plan, "ALONG_WITH_CHECKS", (1.0, 1.0))
    monkeypatch.setattr(status, "CHECK_TIME_REFRESH_INTERVALS", 0)
    rig.body["spec"]["profile"] = PROFILE
    patches, _ = await steady_patches(rig, 20)
    assert patches >= 30, patches


async def test_checks_and_read_backs_that_find_nothing_new_write_their_times_every_12_intervals(
    rig: Rig,
) -> None:
    rig.body["spec"]["profile"] = PROFILE
    patches, calls = await steady_patches(rig, 30)
    # 30 checks (+-10 %) with the profile read along, all finding what was there: the times
    # are written twice (12 and 24 intervals on), not 30 times.
    assert 1 <= patches <= 3, patches
    assert calls >= 5 * 26


@pytest.mark.looptime
async def test_every_worker_is_back_within_30_s_of_the_api_servers_return(fake_kube: FakeKube) -> None:
    from tgbot_operator.kube import KubeError

    loop = asyncio.get_running_loop()
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    deps = Deps(
        settings=OperatorSettings(),
        kube=fake_kube,
        metrics=Metrics(),
        rng=random.Random(7),
        clock=lambda: epoch + timedelta(seconds=loop.time()),  # virtual time, as the loop's
    )
    down = True
    back_at: dict[str, float] = {}
    real_read = fake_kube.read_secret

    async def read(namespace: str, name: str) -> Any:
        if down:
            raise KubeError(f'cannot read Secret "{name}": the API server did not answer')
        back_at.setdefault(name, loop.time())
        return await real_read(namespace, name)

    fake_kube.read_secret = read  # type: ignore[method-assign]
    workers = []
    for n in range(30):
        body = {
            "metadata": {"name": f"bot{n}", "namespace": "ns", "uid": f"u{n}", "generation": 1},
            # A server not on the allow-list: nothing leaves for Telegram, only Kubernetes calls.
            "spec": {
                "tokenSecretRef": {"name": "t"},
                "botApiServer": "https://not-allowed.example",
                "webhook": {"url": "https://example.org/hook"},
            },
        }
        workers.append(BotWorker(deps, body=body, logger=logging.getLogger("test"), events=lambda *e: None))
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await asyncio.sleep(600)  # ten minutes without an API server: every backoff at its cap
        assert deps.metrics.failing._value.get() == 30
        down, returned = False, loop.time()
        while deps.metrics.failing._value.get() > 0 and loop.time() < returned + 60:
            await asyncio.sleep(0.1)
        converged = loop.time() - returned
        assert len(back_at) == 30
        assert converged <= 20.0  # the target: every bot reconciled within 30 s of the return
        assert all(w.memory.not_before is None for w in workers)  # and no backoff left to wait out
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
