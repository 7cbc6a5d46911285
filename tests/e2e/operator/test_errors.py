"""Errors: bad and missing tokens, 429 and 5xx storms, token replacement."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import (
    Bots,
    apply,
    assert_no_secrets_leaked,
    bot_manifest,
    condition,
    events,
    eventually,
    get,
    new_token,
    token_secret,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_bad_token_is_reported_without_a_retry_storm_then_fixed(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    good = new_token(3001)
    bad = new_token(3001)  # same bot id, wrong secret half: what a revoked token looks like
    await emulator.client.add_bot(good, "fixme_bot")
    operator = start_operator()
    await apply(
        cluster, namespace, token_secret("bad-token", bad), bot_manifest("bad", emulator.url, "bad-token")
    )
    bot = await wait_condition(cluster, namespace, "bad", "TokenValid", "False", "Unauthorized")
    assert condition(bot, "Ready")["status"] == "False"
    assert 'Secret "bad-token" key "token"' in condition(bot, "TokenValid")["message"]
    calls_before = operator.metric("tgbot_operator_telegram_calls_total")
    await asyncio.sleep(6)
    calls_after = operator.metric("tgbot_operator_telegram_calls_total")
    assert calls_after - calls_before <= 1, (calls_before, calls_after)
    assert "Unauthorized" in {e["reason"] for e in await events(cluster, namespace)}
    # The token is fixed in the Secret: the token check notices and all goes well.
    await apply(cluster, namespace, token_secret("bad-token", good))
    await wait_condition(cluster, namespace, "bad", timeout=30)
    await assert_no_secrets_leaked(cluster, namespace, operator, good, bad)


async def test_missing_secret_then_created(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    token = new_token(3002)
    await emulator.client.add_bot(token, "late_bot")
    start_operator()
    await apply(cluster, namespace, bot_manifest("late", emulator.url, "late-token"))
    bot = await wait_condition(cluster, namespace, "late", "TokenValid", "False", "SecretNotFound")
    assert 'Secret "late-token" not found' in condition(bot, "TokenValid")["message"]
    assert condition(bot, "Ready")["reason"] == "SecretNotFound"
    reasons = {e["reason"] for e in await events(cluster, namespace)}
    assert "ObserveFailed" not in reasons
    await apply(cluster, namespace, token_secret("late-token", token))
    await wait_condition(cluster, namespace, "late", timeout=30)


async def test_missing_key(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    token = new_token(3003)
    await emulator.client.add_bot(token, "key_bot")
    start_operator()
    await apply(
        cluster,
        namespace,
        token_secret("key-token", token, key="wrong"),
        bot_manifest("key", emulator.url, "key-token"),
    )
    bot = await wait_condition(cluster, namespace, "key", "TokenValid", "False", "SecretKeyMissing")
    assert condition(bot, "TokenValid")["message"] == 'Secret "key-token" has no key "token"'
    await apply(cluster, namespace, token_secret("key-token", token))
    await wait_condition(cluster, namespace, "key", timeout=30)


@pytest.mark.parametrize("kind", ["429", "500", "502", "drop"])
async def test_fault_storms_converge(
    cluster: Cluster,
    namespace: str,
    emulator: Emulator,
    start_operator: OperatorFactory,
    bots: Bots,
    kind: str,
) -> None:
    bot_id = 3100 + ["429", "500", "502", "drop"].index(kind)
    await emulator.client.add_fault(kind, count=3, bot_id=bot_id, retry_after=1 if kind == "429" else None)
    operator = start_operator("--telegram-timeout", "3")
    token = (await bots.ready_bot("storm", bot_id, username=f"storm_bot_{kind}", timeout=90)).token
    assert len(await emulator.client.calls(bot_id, method="setWebhook")) >= 1
    assert await emulator.client.faults() == []  # every injected fault was hit
    outcome = {"429": "RetryAfter", "500": "ServerError", "502": "ServerError", "drop": "NetworkError"}[kind]
    assert operator.metric("tgbot_operator_telegram_calls_total", outcome=outcome) >= 1
    await assert_no_secrets_leaked(cluster, namespace, operator, token)


async def test_token_replaced_is_picked_up(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    operator = start_operator()
    old = (await bots.ready_bot("rev", 3004)).token
    new = new_token(3004)
    await emulator.client.replace_token(3004, new)  # BotFather: revoke and issue a new token
    await apply(cluster, namespace, token_secret("rev-token", new))
    await eventually(
        lambda: emulator.client.calls(3004, method="getMe"),
        lambda calls: len(calls) >= 2,
        timeout=20,
        what="getMe with the new token",
    )
    bot = await wait_condition(cluster, namespace, "rev", timeout=30)
    assert condition(bot, "TokenValid")["status"] == "True"
    assert len(await emulator.client.calls(3004, method="setWebhook")) == 2
    assert "TokenChanged" in {e["reason"] for e in await events(cluster, namespace)}
    live = await emulator.client.webhook(3004)
    assert live["url"] == (await get(cluster, namespace, "tgbot", "rev"))["spec"]["webhook"]["url"]  # type: ignore[index]
    await assert_no_secrets_leaked(cluster, namespace, operator, old, new)
