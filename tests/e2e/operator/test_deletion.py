"""Deletion: the finalizer deletes the webhook (or keeps it), and never hangs forever."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web

from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import (
    Bots,
    apply,
    bot_manifest,
    events,
    eventually,
    get,
    kubectl,
    new_token,
    token_secret,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def _gone(cluster: Cluster, namespace: str, name: str, timeout: float = 60) -> None:
    await eventually(
        lambda: get(cluster, namespace, "tgbot", name),
        lambda b: b is None,
        timeout=timeout,
        what=f"{name} gone",
    )


async def test_delete_policy_deletes_the_webhook(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    start_operator()
    await bots.ready_bot("del", 4001)
    await kubectl(cluster, "delete", "tgbot", "del", "-n", namespace, "--wait=false")
    await _gone(cluster, namespace, "del")
    assert (await emulator.client.webhook(4001))["url"] == ""
    assert len(await emulator.client.calls(4001, method="deleteWebhook")) == 1
    assert "WebhookDeleted" in {e["reason"] for e in await events(cluster, namespace)}
    if cluster.has_garbage_collector:
        await eventually(
            lambda: get(cluster, namespace, "secret", "del-webhook"),
            lambda s: s is None,
            timeout=120,  # the garbage collector learns about a new CRD on its 30 s discovery resync
            what="the generated Secret to be garbage-collected",
        )


async def test_keep_policy_leaves_the_webhook(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    start_operator()
    manifest = (await bots.ready_bot("keep", 4002, deletionPolicy="Keep")).manifest
    await kubectl(cluster, "delete", "tgbot", "keep", "-n", namespace, "--wait=false")
    await _gone(cluster, namespace, "keep")
    assert (await emulator.client.webhook(4002))["url"] == manifest["spec"]["webhook"]["url"]
    assert await emulator.client.calls(4002, method="deleteWebhook") == []
    assert "WebhookKept" in {e["reason"] for e in await events(cluster, namespace)}


async def test_webhook_no_longer_ours_is_left_alone(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    operator = start_operator()
    token = (await bots.ready_bot("mv", 4003)).token
    operator.stop()  # so that it does not repair the "drift" we make next
    await asyncio.sleep(1.1)
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{emulator.url}/bot{token}/setWebhook", json={"url": "http://127.0.0.1:9/new-home"}
        )
        assert (await response.json())["ok"] is True
    await kubectl(cluster, "delete", "tgbot", "mv", "-n", namespace, "--wait=false")
    operator.start()
    await _gone(cluster, namespace, "mv")
    assert (await emulator.client.webhook(4003))["url"] == "http://127.0.0.1:9/new-home"
    assert await emulator.client.calls(4003, method="deleteWebhook") == []
    assert "WebhookNotOurs" in {e["reason"] for e in await events(cluster, namespace)}


async def test_deletion_gives_up_when_telegram_is_unreachable(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    start_operator("--deletion-timeout", "6", "--telegram-timeout", "2")
    await bots.ready_bot("un", 4004)
    await emulator.client.add_fault("502", count=1000, bot_id=4004)
    await kubectl(cluster, "delete", "tgbot", "un", "-n", namespace, "--wait=false")
    await _gone(cluster, namespace, "un", timeout=60)
    assert "DeletionTimedOut" in {e["reason"] for e in await events(cluster, namespace)}


async def test_deletion_with_a_missing_token_does_not_block(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    start_operator()
    await apply(cluster, namespace, bot_manifest("nt", emulator.url, "no-such-token"))
    await wait_condition(cluster, namespace, "nt", "TokenValid", "False", "SecretNotFound")
    await kubectl(cluster, "delete", "tgbot", "nt", "-n", namespace, "--wait=false")
    await _gone(cluster, namespace, "nt", timeout=30)
    assert "WebhookLeft" in {e["reason"] for e in await events(cluster, namespace)}


@pytest.mark.parametrize(
    "garbage",
    [
        b'{"ok": true, "result": {"url": "", "pending_update_count": "lots", "id": "x"}}',
        b"<html><body>502 Bad Gateway</body></html>",
    ],
)
async def test_deletion_completes_against_a_server_answering_garbage(
    cluster: Cluster, namespace: str, start_operator: OperatorFactory, garbage: bytes
) -> None:
    """A malformed answer used to raise a bare ValueError in the finalizer: kopf retried it forever,
    past --deletion-timeout, and the TelegramBot (and its namespace) stayed Terminating."""
    calls: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        calls.append(request.path.rpartition("/")[2])
        return web.Response(body=garbage, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        start_operator("--deletion-timeout", "6", allow=[url])
        await apply(
            cluster, namespace, token_secret("g-token", new_token(4006)), bot_manifest("g", url, "g-token")
        )
        bot = await wait_condition(cluster, namespace, "g", "Ready", "False", reason="MalformedAnswer")
        assert "ValueError" not in json.dumps(bot)
        await kubectl(cluster, "delete", "tgbot", "g", "-n", namespace, "--wait=false")
        await _gone(cluster, namespace, "g", timeout=60)
        assert "DeletionTimedOut" in {e["reason"] for e in await events(cluster, namespace)}
        assert "getWebhookInfo" in calls or "getMe" in calls
    finally:
        await runner.cleanup()
