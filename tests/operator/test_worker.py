"""The worker loop against the real emulator (in-process) and an in-memory Kubernetes: no cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

import pytest

from tgbot_operator import names
from tgbot_operator.conditions import parse_time
from tgbot_operator.status import merge_patch
from tgbot_operator.worker import RECORD_CHECKS_AT_STOP, BotWorker

from .conftest import TOKEN, UID, Rig


async def test_first_pass_registers_and_reports_ready(rig: Rig) -> None:
    await rig.worker.run_pass()
    calls = await rig.setwebhooks()
    assert len(calls) == 1
    secret = rig.kube.data("bot-webhook")
    assert calls[0]["params"]["secret_token"] == secret["secret-token"].decode()
    conditions = rig.conditions()
    assert all(c["status"] == "True" for c in conditions.values()), conditions
    assert rig.kube.status["bot"]["mention"] == "@worker_bot"
    raw = rig.kube.secrets[("ns", "bot-webhook")]
    assert raw["metadata"]["ownerReferences"][0]["uid"] == UID
    assert raw["metadata"]["labels"] == {
        names.MANAGED_BY_LABEL: names.MANAGED_BY_VALUE,
        names.BOT_LABEL: "bot",
    }
    assert [e[1] for e in rig.events] == ["SecretCreated", "WebhookRegistered"]
    # A second pass changes nothing (and writes no status).
    patches = rig.kube.status_patches
    await rig.worker.run_pass()
    assert len(await rig.setwebhooks()) == 1
    assert rig.kube.status_patches == patches


async def test_a_new_worker_with_the_old_status_does_not_register_again(rig: Rig) -> None:
    await rig.worker.run_pass()
    rig.body["status"] = rig.kube.status
    fresh = BotWorker(rig.worker.deps, body=rig.body, logger=rig.worker.logger, events=lambda *e: None)
    await fresh.run_pass()
    assert len(await rig.setwebhooks()) == 1


async def test_checks_only_call_getwebhookinfo(rig: Rig) -> None:
    await rig.worker.run_pass()
    before = await rig.emulator.calls(5001)
    for _ in range(3):
        rig.clock.advance(400)
        await rig.worker.run_pass()
    after = await rig.emulator.calls(5001)
    new = [c["method"] for c in after[len(before) :]]
    assert new == ["getWebhookInfo"] * 3


async def test_rotation_through_all_phases(rig: Rig) -> None:
    await rig.worker.run_pass()
    first = rig.kube.data("bot-webhook")["secret-token"]
    rig.body["metadata"]["annotations"][names.ROTATE_ANNOTATION] = "1"
    await rig.worker.run_pass()
    data = rig.kube.data("bot-webhook")
    assert data["previous-secret-token"] == first
    second = data["secret-token"]
    assert second != first
    assert len(await rig.setwebhooks()) == 1  # not yet
    assert rig.kube.status["rotationPhase"] == "Propagating"
    rig.clock.advance(91)
    await rig.worker.run_pass()
    calls = await rig.setwebhooks()
    assert len(calls) == 2
    assert calls[-1]["params"]["secret_token"] == second.decode()
    assert rig.kube.data("bot-webhook")["previous-secret-token"] == first
    assert rig.kube.status["rotationPhase"] == "Retiring"
    rig.clock.advance(121)
    await rig.worker.run_pass()
    assert "previous-secret-token" not in rig.kube.data("bot-webhook")
    assert rig.kube.status["rotationPhase"] == "Idle"
    # Handled: the same annotation does not rotate again.
    rig.clock.advance(10)
    await rig.worker.run_pass()
    assert rig.kube.data("bot-webhook")["secret-token"] == second
    assert len(await rig.setwebhooks()) == 2


async def test_unauthorized_token_is_not_retried_in_a_loop(rig: Rig) -> None:
    rig.kube.put("ns", "bot-token", {"token": b"5001:WrongTokenWrongTokenWrongToken123"})
    for _ in range(5):
        await rig.worker.run_pass()
        rig.clock.advance(30)
    conditions = rig.conditions()
    assert conditions["TokenValid"]["reason"] == "Unauthorized"
    assert conditions["Ready"]["status"] == "False"
    assert [e[1] for e in rig.events] == ["Unauthorized"]
    # Fixed token: at once.
    rig.kube.put("ns", "bot-token", {"token": TOKEN.encode()})
    await rig.worker.run_pass()
    assert rig.conditions()["Ready"]["status"] == "True"
    assert "WrongToken" not in json.dumps(rig.kube.status)


async def test_server_errors_back_off_then_converge(rig: Rig) -> None:
    await rig.emulator.add_fault("500", count=3, method="setWebhook")
    until = await rig.worker.run_pass()
    assert rig.conditions()["Ready"]["reason"] == "ServerError"
    assert until is not None
    for _ in range(5):
        rig.clock.advance(60)
        await rig.worker.run_pass()
    assert rig.conditions()["Ready"]["status"] == "True"
    assert [e[1] for e in rig.events].count("SetWebhookFailed") == 1


async def test_missing_key_then_fixed(rig: Rig) -> None:
    rig.kube.put("ns", "bot-token", {"other": b"x"})
    await rig.worker.run_pass()
    assert rig.conditions()["TokenValid"]["message"] == 'Secret "bot-token" has no key "token"'
    assert await rig.emulator.calls(5001) == []
    rig.kube.put("ns", "bot-token", {"token": TOKEN.encode()})
    await rig.worker.run_pass()
    assert rig.conditions()["Ready"]["status"] == "True"


async def test_a_check_that_finds_nothing_new_writes_only_its_time_and_that_every_12_intervals(
    rig: Rig,
) -> None:
    await rig.worker.run_pass()
    old, patches = dict(rig.kube.status), rig.kube.status_patches
    looks = len(await rig.emulator.calls(5001, method="getWebhookInfo"))
    rig.clock.advance(400)
    await rig.worker.run_pass()
    assert len(await rig.emulator.calls(5001, method="getWebhookInfo")) == looks + 1  # checked
    assert rig.kube.status_patches == patches  # and nothing written
    rig.clock.advance(300 * 12)
    await rig.worker.run_pass()
    assert rig.kube.status_patches == patches + 1
    patch = merge_patch(old, rig.kube.status)
    assert set(patch) == {"webhook"}
    assert set(patch["webhook"]) == {"lastCheckTime"}


@contextlib.asynccontextmanager
async def running(rig: Rig) -> AsyncIterator[None]:
    """The worker's own loop as kopf's daemon runs it; stopped (within 5 s) on the way out."""
    task = asyncio.create_task(rig.worker.run())
    try:
        yield
    finally:
        rig.worker.stop()
        await asyncio.wait_for(task, 5)


async def until_ready(rig: Rig) -> None:
    async with asyncio.timeout(5):
        while not rig.kube.status.get("conditions") or rig.conditions()["Ready"]["status"] != "True":
            await asyncio.sleep(0.02)


async def test_running_worker_rotates_at_once_when_poked_and_stops(rig: Rig) -> None:
    async with running(rig):
        await until_ready(rig)
        first = rig.kube.data("bot-webhook")["secret-token"]
        rig.body["metadata"]["annotations"][names.ROTATE_ANNOTATION] = "go"
        rig.worker.poke()  # what kopf's field handler does (handlers.py)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):  # token checks are 30 s apart: only the poke can be this quick
                while rig.kube.data("bot-webhook").get("previous-secret-token") != first:
                    await asyncio.sleep(0.05)
        assert rig.kube.data("bot-webhook").get("previous-secret-token") == first
    assert rig.worker.stopped


class Killed(BaseException):
    """SIGKILL stand-in: nothing after it runs (not even ``except Exception``)."""


async def test_a_kill_right_after_setwebhook_does_not_cost_a_second_registration(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    observe = BotWorker.observe

    async def killed_once_registered(self: BotWorker) -> Any:
        if self.memory.registration is not None:
            raise Killed
        return await observe(self)

    monkeypatch.setattr(BotWorker, "observe", killed_once_registered)
    with pytest.raises(Killed):
        await rig.worker.run_pass()
    assert len(await rig.setwebhooks()) == 1
    assert "registration" in rig.kube.status  # written before anything else could fail
    monkeypatch.setattr(BotWorker, "observe", observe)
    rig.body["status"] = rig.kube.status
    fresh = BotWorker(rig.worker.deps, body=rig.body, logger=rig.worker.logger, events=lambda *e: None)
    await fresh.run_pass()
    assert len(await rig.setwebhooks()) == 1
    assert rig.conditions()["Ready"]["status"] == "True"


async def test_status_writes_failing_do_not_end_the_worker_nor_lose_the_registration(rig: Rig) -> None:
    # The API server is down while the bot registers: every status patch fails, with the error the
    # HTTP client raises when it cannot connect (not a KubeError).
    real_patch = rig.kube.patch_bot_status

    async def refused(namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    rig.kube.patch_bot_status = refused  # type: ignore[method-assign]
    await rig.worker.run_pass()  # must not raise: kopf would restart the daemon with no memory
    assert len(await rig.setwebhooks()) == 1
    assert rig.kube.status == {}
    rig.kube.patch_bot_status = real_patch  # type: ignore[method-assign]
    rig.clock.advance(10)
    await rig.worker.run_pass()  # the API server is back: the pass writes what memory kept
    assert len(await rig.setwebhooks()) == 1
    assert "registration" in rig.kube.status
    assert rig.conditions()["Ready"]["status"] == "True"
    writes = rig.worker.deps.metrics.status_writes
    assert writes.labels(fields="registration", outcome="failed")._value.get() == 1
    assert writes.labels(fields="registration", outcome="ok")._value.get() == 0  # in the full write
    full = [labels for labels in _label_sets(writes) if labels["outcome"] == "ok"]
    assert len(full) == 1
    assert {"conditions", "registration", "webhook"} <= set(full[0]["fields"].split("+"))


def _label_sets(counter: Any) -> list[dict[str, str]]:
    return [
        sample.labels
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.value
    ]


def test_a_restarted_worker_takes_the_bots_identity_from_status() -> None:
    from tgbot_operator.observation import memory_from_status

    status = {
        "bot": {"id": 42, "username": "echo_bot", "mention": "@echo_bot", "identityHash": "hmac-sha256:abc"},
        "registration": {
            "fingerprint": "sha256:f",
            "registeredAt": "2026-11-26T10:00:00Z",
            "url": "https://x/h",
        },
    }
    memory = memory_from_status(status)
    assert memory.me is not None
    assert (memory.me.id, memory.me.username, memory.status_identity) == (42, "echo_bot", "hmac-sha256:abc")
    assert memory.me_token_hash is None  # trusted only once checked against the token read
    assert memory.registration is not None
    # A status from before identityHash existed, or with the unkeyed sha256 of older versions: getMe.
    assert memory_from_status({"bot": {"id": 42, "username": "echo_bot"}}).me is None
    assert memory_from_status({"bot": {"id": 42, "identityHash": "sha256:abc"}}).me is None


async def test_a_restart_costs_no_getme_and_a_forged_identity_costs_one(rig: Rig) -> None:
    await rig.worker.run_pass()
    assert rig.kube.status["bot"]["identityHash"].startswith("hmac-sha256:")
    assert names.IDENTITY_KEY_KEY in rig.kube.data("bot-webhook")
    getmes = len(await rig.emulator.calls(5001, method="getMe"))
    rig.body["status"] = json.loads(json.dumps(rig.kube.status))
    fresh = BotWorker(rig.worker.deps, body=rig.body, logger=rig.worker.logger, events=lambda *e: None)
    await fresh.run_pass()
    assert len(await rig.emulator.calls(5001, method="getMe")) == getmes
    assert fresh.memory.me is not None
    # Someone edits status (or the token changed): the identity is not taken on trust.
    rig.body["status"]["bot"]["identityHash"] = "hmac-sha256:" + "0" * 64
    forged = BotWorker(rig.worker.deps, body=rig.body, logger=rig.worker.logger, events=lambda *e: None)
    await forged.run_pass()
    assert len(await rig.emulator.calls(5001, method="getMe")) == getmes + 1
    assert len(await rig.setwebhooks()) == 1


async def test_a_secret_from_before_the_identity_key_gets_one_added_and_nothing_else(rig: Rig) -> None:
    await rig.worker.run_pass()
    before = rig.kube.data("bot-webhook")
    raw = rig.kube.secrets[("ns", "bot-webhook")]
    del raw["data"][names.IDENTITY_KEY_KEY]
    rig.clock.advance(10)
    await rig.worker.run_pass()
    after = rig.kube.data("bot-webhook")
    assert after[names.IDENTITY_KEY_KEY] != before[names.IDENTITY_KEY_KEY]
    assert after["secret-token"] == before["secret-token"]
    assert len(await rig.setwebhooks()) == 1


async def test_a_self_signed_renewal_overlaps_the_two_certificates(rig: Rig) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    def sha(pem: bytes) -> str:
        return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()

    deps = rig.worker.deps
    deps.settings = deps.settings.model_copy(
        update={
            "self_signed_validity": 40.0,
            "self_signed_renew_before": 30.0,
            "rotation_propagation_grace": 2.0,
        }
    )
    rig.body["spec"]["webhook"] = {"url": "https://127.0.0.1:9/hook", "certificate": {"mode": "SelfSigned"}}
    await rig.worker.run_pass()
    first = rig.kube.data("bot-webhook")["tls.crt"]
    assert (await rig.emulator.webhook(5001))["certificate_sha256"] == sha(first)
    rig.clock.advance(11)  # 29 s left: renewal is due
    await rig.worker.run_pass()
    data = rig.kube.data("bot-webhook")
    second = data["tls.crt"]
    assert second != first
    assert data["previous-tls.crt"] == first  # still trusted
    assert "next-tls.crt" not in data
    # Telegram was told to trust both before the swap (the new one first)...
    webhook = await rig.emulator.webhook(5001)
    assert webhook["certificate_sha256"] == sha(second)
    assert len(await rig.setwebhooks()) == 2
    # ...and the new one alone once the propagation grace is over.
    rig.clock.advance(deps.settings.rotation_propagation_grace + 1)
    await rig.worker.run_pass()
    assert len(await rig.setwebhooks()) == 3
    data = rig.kube.data("bot-webhook")
    assert "previous-tls.crt" not in data
    assert data["tls.crt"] == second
    reasons = [e[1] for e in rig.events]
    assert reasons.count("CertificateRenewalStarted") == 1
    assert "CertificateRenewed" in reasons
    assert "PreviousCertificateRetired" in reasons
    assert rig.conditions()["Ready"]["status"] == "True"


async def test_a_check_made_as_the_worker_stops_is_still_recorded(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM lands while a check is in flight: the check's time still reaches status, so the
    next operator process knows of it and does not make it again at once."""
    from tgbot_operator import execute as execute_module
    from tgbot_operator import worker as worker_module

    await rig.worker.run_pass()
    before = rig.kube.status["webhook"]["lastCheckTime"]
    execute = execute_module.execute

    async def execute_then_stop(*args: Any) -> Any:
        outcome = await execute(*args)
        rig.worker.stop()
        return outcome

    monkeypatch.setattr(worker_module, "execute", execute_then_stop)
    rig.clock.advance(400)  # a check that finds nothing new: its time would wait (see above)
    await rig.worker.run_pass()
    assert rig.worker.stopped
    assert rig.kube.status["webhook"]["lastCheckTime"] != before


async def test_a_check_just_before_a_stop_is_written_so_the_next_process_does_not_repeat_it(
    rig: Rig,
) -> None:
    await rig.worker.run_pass()
    rig.clock.advance(400)
    await rig.worker.run_pass()  # a check that found nothing new: its time waits (see above)
    patches = rig.kube.status_patches
    rig.clock.advance(2)
    rig.worker.stop()
    await rig.worker.run()  # stopped: no pass, only what the stop writes
    assert rig.kube.status_patches == patches + 1
    checked = parse_time(rig.kube.status["webhook"]["lastCheckTime"])
    assert checked is not None
    assert abs(checked - (rig.clock() - timedelta(seconds=2))) < timedelta(seconds=1)  # (whole seconds)
    rig.body["status"] = rig.kube.status
    fresh = BotWorker(rig.worker.deps, body=rig.body, logger=rig.worker.logger, events=lambda *e: None)
    due = fresh.memory.next_live_check
    assert due is not None
    assert due >= checked + rig.worker.deps.timing.check_interval / 2


async def test_a_stop_long_after_the_last_check_writes_nothing(rig: Rig) -> None:
    await rig.worker.run_pass()
    rig.clock.advance(400)
    await rig.worker.run_pass()
    patches = rig.kube.status_patches
    rig.clock.advance(RECORD_CHECKS_AT_STOP.total_seconds() + 1)
    rig.worker.stop()
    await rig.worker.run()
    assert rig.kube.status_patches == patches


@pytest.mark.parametrize("watching", [True, False], ids=["watch", "poll"])
async def test_a_token_check_makes_a_pass_only_when_a_secret_may_have_changed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, watching: bool
) -> None:
    rig.kube.watching = watching
    monkeypatch.setattr(rig.worker, "_token_check_delay", lambda: 0.02)
    passes = 0
    run_pass = rig.worker.run_pass

    async def counted() -> Any:
        nonlocal passes
        passes += 1
        return await run_pass()

    monkeypatch.setattr(rig.worker, "run_pass", counted)
    async with running(rig):
        await until_ready(rig)
        await asyncio.sleep(0.1)  # the pass after the one that wrote the webhook Secret
        before = passes
        await asyncio.sleep(0.4)  # ~20 token checks
        if watching:
            assert passes == before  # nothing changed: not even a pass
        else:
            assert passes >= before + 5  # polling: every token check reads the Secrets
        rig.kube.put("ns", "bot-token", {"token": b"not a token"})
        async with asyncio.timeout(5):
            while rig.conditions()["TokenValid"]["status"] != "False":
                await asyncio.sleep(0.02)
        assert "does not hold a bot token" in rig.conditions()["TokenValid"]["message"]


async def test_a_spec_change_poked_in_the_middle_of_a_pass_gets_a_pass_of_its_own(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf's change handler may poke while a pass is under way, after it read the spec: the
    worker must not take the next wake-up for a token check with nothing to do."""
    rig.kube.watching = True
    monkeypatch.setattr(rig.worker, "_token_check_delay", lambda: 0.02)
    observe = rig.worker.observe
    armed = False

    async def observe_then_change() -> Any:
        nonlocal armed
        obs = await observe()
        if armed:
            armed = False
            rig.body["spec"]["webhook"]["maxConnections"] = 7
            rig.worker.poke()  # what spec_changed does (handlers.py)
        return obs

    monkeypatch.setattr(rig.worker, "observe", observe_then_change)
    async with running(rig):
        async with asyncio.timeout(5):
            while len(await rig.setwebhooks()) < 1:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        armed = True
        rig.worker.poke()  # a pass that reads the old spec, then the change arrives
        async with asyncio.timeout(3):
            while not any(c["params"].get("max_connections") in (7, "7") for c in await rig.setwebhooks()):
                await asyncio.sleep(0.02)


async def test_a_stop_during_a_pass_ends_the_worker_at_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    observe = rig.worker.observe

    async def observe_then_stop() -> Any:
        obs = await observe()
        rig.worker.stop()
        return obs

    monkeypatch.setattr(rig.worker, "observe", observe_then_stop)
    await asyncio.wait_for(rig.worker.run(), 2)  # token checks are 30 s apart: not waited for
    assert rig.worker.stopped
