"""End to end: Delivering follows what Telegram (the emulator) reports of its deliveries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import (
    Bots,
    assert_no_secrets_leaked,
    condition,
    events,
    eventually,
    kubectl,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@dataclass
class Receiver:
    """The bot's webhook receiver: answers ``status`` to every delivery."""

    url: str
    status: int = 500
    received: list[int] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def webhook(request: web.Request) -> web.Response:
        update = await request.json()
        if state.status == 200:
            state.received.append(int(update["update_id"]))
        return web.Response(status=state.status, text="boom" if state.status >= 500 else "ok")

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/webhook"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_failing_deliveries_show_in_kubectl_get_and_recover(
    cluster: Cluster,
    namespace: str,
    emulator: Emulator,
    start_operator: OperatorFactory,
    receiver: Receiver,
    bots: Bots,
) -> None:
    operator = start_operator()
    health = await bots.ready_bot("health", 1301, until="Delivering", webhook={"url": receiver.url})
    token, bot = health.token, health.body
    assert condition(bot, "Ready")["status"] == "True"

    async def table() -> list[list[str]]:
        out = (await kubectl(cluster, "get", "tgbot", "health", "-n", namespace)).stdout
        return [line.split() for line in out.splitlines()]

    header, row = await table()
    assert header == ["NAME", "BOT", "URL", "READY", "PENDING", "DELIVERING", "AGE"]
    assert row[3:6] == ["True", "0", "True"]

    # The bot answers 500 to every update: Telegram keeps failing, the operator says so.
    update_id = await emulator.client.send_user_message(1301, "hello")
    bot = await wait_condition(cluster, namespace, "health", "Delivering", "False", timeout=30)
    delivering = condition(bot, "Delivering")
    assert delivering["reason"] == "DeliveryFailing"
    assert "Wrong response from the webhook: 500" in delivering["message"]
    assert "1 update pending" in delivering["message"]
    # Ready is the operator's part (registered, in sync); Delivering is the bot's health.
    assert condition(bot, "Ready")["status"] == "True"
    _, row = await table()
    assert row[3:6] == ["True", "1", "False"], row

    warnings = [e for e in await events(cluster, namespace) if e["reason"] == "DeliveryFailing"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["type"] == "Warning"
    assert "500" in warnings[0]["message"]

    # Still failing a few checks later (retries further apart than checks): no flapping, one Event.
    before = await operator_checks(emulator)
    await eventually(
        lambda: operator_checks(emulator), lambda n: n >= before + 3, timeout=20, what="three more checks"
    )
    bot = await wait_condition(cluster, namespace, "health", "Delivering", "False")
    assert condition(bot, "Delivering")["lastTransitionTime"] == delivering["lastTransitionTime"]

    # The bot is fixed: the update arrives, Delivering recovers with a Normal Event.
    receiver.status = 200
    await eventually(lambda: _received(receiver), lambda ids: update_id in ids, timeout=30, what="delivery")
    bot = await wait_condition(cluster, namespace, "health", "Delivering", "True", timeout=30)
    assert condition(bot, "Delivering")["reason"] == "Delivering"
    _, row = await table()
    assert row[3:6] == ["True", "0", "True"], row
    reasons = [(e["type"], e["reason"]) for e in await events(cluster, namespace)]
    assert ("Normal", "DeliveryRecovered") in reasons
    assert reasons.count(("Warning", "DeliveryFailing")) == 1
    await assert_no_secrets_leaked(cluster, namespace, operator, token)


async def operator_checks(emulator: Emulator) -> int:
    return len(await emulator.client.calls(1301, method="getWebhookInfo"))


async def _received(receiver: Receiver) -> list[int]:
    return list(receiver.received)
