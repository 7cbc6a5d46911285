"""Webhook delivery to a real aiohttp receiver: headers, retries, ordering, filters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from tests.emulator.helpers import BOT_ID, BotApi, Receiver, eventually, start_receiver
from tgbot_emulator import EmulatorClient, EmulatorServer

#: Retry backoffs, Retry-After and "several retry rounds" are asyncio timers: on looptime's virtual
#: clock they cost no wall time, and the receiver's timestamps are on that clock too.
VIRTUAL_TIME = pytest.mark.looptime


def failing_times(n: int, status: int = 500, headers: dict[str, str] | None = None) -> Any:
    """A behaviour that answers ``status`` n times, then 200."""
    left = {"n": n}

    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        if left["n"] > 0:
            left["n"] -= 1
            return web.Response(status=status, headers=headers)
        return web.Response(status=200)

    return behave


async def attempts(client: EmulatorClient, update_id: int) -> list[dict[str, Any]]:
    return [d for d in await client.deliveries(BOT_ID) if d["update_id"] == update_id]


async def test_delivers_json_with_secret_header(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    await api.ok("setWebhook", url=receiver.url, secret_token="my-secret_1")
    update_id = await client.send_user_message(BOT_ID, "hello", user_id=7, first_name="Ann")
    result = await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    assert result["delivered"] == [update_id]
    [got] = receiver.received
    assert got.headers["X-Telegram-Bot-Api-Secret-Token"] == "my-secret_1"
    assert got.headers["Content-Type"].startswith("application/json")
    message = got.body["message"]
    assert got.body["update_id"] == update_id
    assert message["text"] == "hello"
    assert message["from"] == {"id": 7, "is_bot": False, "first_name": "Ann", "language_code": "en"}
    assert message["chat"] == {"id": 7, "type": "private", "first_name": "Ann"}
    assert isinstance(message["message_id"], int)
    assert isinstance(message["date"], int)
    [attempt] = await attempts(client, update_id)
    assert attempt["status"] == 200
    assert attempt["error"] is None
    assert attempt["attempt"] == 1
    assert attempt["duration_ms"] >= 0


async def test_no_secret_header_without_secret(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    assert "X-Telegram-Bot-Api-Secret-Token" not in receiver.received[0].headers


async def test_update_ids_increase(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    await api.ok("setWebhook", url=receiver.url)
    ids = [await client.send_user_message(BOT_ID, f"m{i}") for i in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    await client.wait_delivered(BOT_ID, ids, timeout=10)
    assert receiver.update_ids() == ids


@VIRTUAL_TIME
async def test_retries_with_backoff_on_500(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    receiver.behaviour = failing_times(3)
    await api.ok("setWebhook", url=receiver.url)
    update_id = await client.send_user_message(BOT_ID, "retry me")
    await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    tries = await attempts(client, update_id)
    assert [t["status"] for t in tries] == [500, 500, 500, 200]
    assert tries[0]["error"] == "Wrong response from the webhook: 500 Internal Server Error"
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    # initial 0.05 s, doubling, capped at 0.2 s: 0.05, 0.1, 0.2
    assert gaps[0] >= 0.045
    assert gaps[1] >= 0.095
    assert gaps[2] >= 0.19
    assert gaps[2] < 1.5
    states = {u["update_id"]: (u["state"], u["attempts"]) for u in await client.updates(BOT_ID)}
    assert states[update_id] == ("delivered", 4)


@VIRTUAL_TIME
async def test_backoff_is_capped(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    receiver.behaviour = failing_times(6)
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert len(gaps) == 6
    assert all(gap < 0.6 for gap in gaps[3:]), gaps  # cap 0.2 s, not 0.4, 0.8, 1.6


async def test_retries_after_timeout(
    api: BotApi, client: EmulatorClient, receiver: Receiver, server: EmulatorServer
) -> None:
    server.config.delivery_timeout_seconds = 0.3  # read at every attempt
    calls = {"n": 0}

    async def slow_once(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.sleep(1.0)
        return web.Response()

    receiver.behaviour = slow_once
    await api.ok("setWebhook", url=receiver.url)
    update_id = await client.send_user_message(BOT_ID, "slow")
    await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    tries = await attempts(client, update_id)
    assert [(t["status"], t["error"]) for t in tries] == [(None, "Read timeout expired"), (200, None)]
    assert 250 <= tries[0]["duration_ms"] < 900


@VIRTUAL_TIME
async def test_honours_retry_after(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    receiver.behaviour = failing_times(1, status=429, headers={"Retry-After": "1"})
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    first, second = receiver.received
    # Backoff alone would retry after 0.05 s; Retry-After asks for a full second.
    assert second.at - first.at >= 0.95


async def test_pending_count_and_last_error(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    async def bad_gateway(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        return web.Response(status=502)

    receiver.behaviour = bad_gateway
    await api.ok("setWebhook", url=receiver.url)
    ids = [
        await client.send_user_message(BOT_ID, "a", chat_id=1),
        await client.send_user_message(BOT_ID, "b", 2),
    ]

    async def errored() -> bool:
        info = await api.ok("getWebhookInfo")
        return "last_error_message" in info

    await eventually(errored)
    info = await api.ok("getWebhookInfo")
    assert info["pending_update_count"] == 2
    assert info["last_error_message"] == "Wrong response from the webhook: 502 Bad Gateway"
    receiver.behaviour = failing_times(0)
    await client.wait_delivered(BOT_ID, ids, timeout=10)
    info = await api.ok("getWebhookInfo")
    assert info["pending_update_count"] == 0
    assert info["last_error_message"] == "Wrong response from the webhook: 502 Bad Gateway"


async def test_connection_refused_is_reported(api: BotApi, client: EmulatorClient) -> None:
    receiver = await start_receiver()
    url = receiver.url
    await receiver.stop()
    await api.ok("setWebhook", url=url)
    update_id = await client.send_user_message(BOT_ID, "nobody home")

    async def failed_twice() -> bool:
        return len(await attempts(client, update_id)) >= 2

    await eventually(failed_twice)
    assert {t["error"] for t in await attempts(client, update_id)} == {"Connection refused"}
    assert (await api.ok("getWebhookInfo"))["last_error_message"] == "Connection refused"


@VIRTUAL_TIME
async def test_per_chat_order_while_other_chats_flow(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    blocked = {"on": True}

    async def block_chat_1(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        if update["message"]["chat"]["id"] == 1 and blocked["on"]:
            return web.Response(status=500)
        return web.Response()

    receiver.behaviour = block_chat_1
    await api.ok("setWebhook", url=receiver.url)
    a1 = await client.send_user_message(BOT_ID, "a1", chat_id=1)
    a2 = await client.send_user_message(BOT_ID, "a2", chat_id=1)
    b = [await client.send_user_message(BOT_ID, f"b{i}", chat_id=2) for i in range(3)]
    await client.wait_delivered(BOT_ID, b, timeout=10)
    await asyncio.sleep(0.3)  # several retry rounds of a1
    texts = receiver.texts()
    assert "a2" not in texts  # a2 waits behind the failing a1
    assert texts.count("a1") >= 2
    assert [t for t in texts if t.startswith("b")] == ["b0", "b1", "b2"]
    blocked["on"] = False
    await client.wait_delivered(BOT_ID, [a1, a2], timeout=10)
    chat_1 = [t for t in receiver.texts() if t.startswith("a")]
    assert chat_1[-2:] == ["a1", "a2"]
    assert chat_1.index("a2") == len(chat_1) - 1


async def test_concurrency_limited_by_max_connections(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    live = {"now": 0, "max": 0}

    async def slow(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        await asyncio.sleep(0.1)
        live["now"] -= 1
        return web.Response()

    receiver.behaviour = slow
    await api.ok("setWebhook", url=receiver.url, max_connections=2)
    ids = [await client.send_user_message(BOT_ID, "x", chat_id=chat) for chat in range(1, 7)]
    await client.wait_delivered(BOT_ID, ids, timeout=10)
    assert live["max"] == 2


async def test_chats_are_delivered_concurrently(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    live = {"now": 0, "max": 0}

    async def slow(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        await asyncio.sleep(0.2)
        live["now"] -= 1
        return web.Response()

    receiver.behaviour = slow
    await api.ok("setWebhook", url=receiver.url)
    ids = [await client.send_user_message(BOT_ID, "x", chat_id=chat) for chat in range(1, 5)]
    await client.wait_delivered(BOT_ID, ids, timeout=10)
    assert live["max"] >= 3


async def test_allowed_updates_filter(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    await api.ok("setWebhook", url=receiver.url, allowed_updates=["callback_query"])
    message = await client.send_user_message(BOT_ID, "not wanted")
    callback = await client.inject_update(
        BOT_ID,
        {"callback_query": {"id": "1", "from": {"id": 5, "is_bot": False, "first_name": "A"}, "data": "x"}},
    )
    await client.wait_delivered(BOT_ID, [callback], timeout=10)
    assert receiver.update_ids() == [callback]
    states = {u["update_id"]: u["state"] for u in await client.updates(BOT_ID)}
    assert states[message] == "dropped"


async def test_default_types_exclude_chat_member(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    await api.ok("setWebhook", url=receiver.url)
    member = await client.inject_update(
        BOT_ID, {"chat_member": {"chat": {"id": -5, "type": "group", "title": "g"}, "date": 0}}
    )
    message = await client.send_user_message(BOT_ID, "ok")
    await client.wait_delivered(BOT_ID, [message], timeout=10)
    assert receiver.update_ids() == [message]
    assert {u["update_id"]: u["state"] for u in await client.updates(BOT_ID)}[member] == "dropped"
    await api.ok("setWebhook", url=receiver.url, allowed_updates=["chat_member", "message"])
    member2 = await client.inject_update(
        BOT_ID, {"chat_member": {"chat": {"id": -5, "type": "group", "title": "g"}, "date": 0}}
    )
    await client.wait_delivered(BOT_ID, [member2], timeout=10)


async def test_updates_wait_without_webhook(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    ids = [await client.send_user_message(BOT_ID, f"q{i}") for i in range(2)]
    await asyncio.sleep(0.1)
    assert {u["state"] for u in await client.updates(BOT_ID)} == {"pending"}
    assert (await api.ok("getWebhookInfo"))["pending_update_count"] == 2
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, ids, timeout=10)
    assert receiver.texts() == ["q0", "q1"]


async def test_drop_pending_updates(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    old = [await client.send_user_message(BOT_ID, f"old{i}") for i in range(3)]
    await api.ok("setWebhook", url=receiver.url, drop_pending_updates=True)
    new = await client.send_user_message(BOT_ID, "new")
    await client.wait_delivered(BOT_ID, [new], timeout=10)
    assert receiver.texts() == ["new"]
    states = {u["update_id"]: u["state"] for u in await client.updates(BOT_ID)}
    assert [states[i] for i in old] == ["dropped"] * 3
    assert (await client.webhook(BOT_ID))["drop_pending_updates_applied"] is True
    with pytest.raises(Exception, match="dropped"):
        await client.wait_delivered(BOT_ID, old, timeout=1)


async def test_secret_rotation_uses_new_secret(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    expected = {"secret": "new-secret"}

    async def check_secret(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        ok = request.headers.get("X-Telegram-Bot-Api-Secret-Token") == expected["secret"]
        return web.Response(status=200 if ok else 401)

    receiver.behaviour = check_secret
    await api.ok("setWebhook", url=receiver.url, secret_token="old-secret")
    update_id = await client.send_user_message(BOT_ID, "rotate")

    async def rejected() -> bool:
        return any(t["status"] == 401 for t in await attempts(client, update_id))

    await eventually(rejected)
    await api.ok("setWebhook", url=receiver.url, secret_token="new-secret")
    await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    assert receiver.received[-1].headers["X-Telegram-Bot-Api-Secret-Token"] == "new-secret"
    view = await client.webhook(BOT_ID, reveal_secrets=True)
    assert view["secret_token"] == "new-secret"
    assert (await client.webhook(BOT_ID))["secret_token"] == "***"


async def test_url_change_lets_in_flight_finish_and_moves_on(api: BotApi, client: EmulatorClient) -> None:
    old = await start_receiver()
    new = await start_receiver()
    release = asyncio.Event()

    async def hold(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        await release.wait()
        return web.Response()

    old.behaviour = hold
    try:
        await api.ok("setWebhook", url=old.url)
        first = await client.send_user_message(BOT_ID, "first")
        await old.wait_for(1)
        await api.ok("setWebhook", url=new.url)
        second = await client.send_user_message(BOT_ID, "second")
        await asyncio.sleep(0.1)
        assert new.received == []  # same chat: second waits for the in-flight first
        release.set()
        await client.wait_delivered(BOT_ID, [first, second], timeout=10)
        assert old.texts() == ["first"]
        assert new.texts() == ["second"]
    finally:
        release.set()
        await old.stop()
        await new.stop()


async def test_delete_webhook_stops_delivery(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    receiver.behaviour = failing_times(1000)
    await api.ok("setWebhook", url=receiver.url)
    await client.send_user_message(BOT_ID, "x")
    await receiver.wait_for(1)
    await api.ok("deleteWebhook")
    await asyncio.sleep(0.05)
    count = len(receiver.received)
    await asyncio.sleep(0.4)
    assert len(receiver.received) == count
    assert (await api.ok("getUpdates"))[0]["message"]["text"] == "x"


async def test_reset_clears_everything_but_configured_bots(
    server: EmulatorServer, client: EmulatorClient, api: BotApi, receiver: Receiver
) -> None:
    await client.add_bot("777:OTHER", "other_bot")
    await api.ok("setWebhook", url=receiver.url)
    await client.add_fault("500", count=5, method="sendMessage")
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    old_bot = server.state.bots[BOT_ID]
    await client.reset()
    assert [b["id"] for b in await client.list_bots()] == [BOT_ID]
    assert server.state.bots[BOT_ID] is not old_bot
    assert await client.calls(BOT_ID) == []
    assert await client.updates(BOT_ID) == []
    assert await client.faults() == []
    assert (await api.ok("getWebhookInfo"))["url"] == ""
    # Delivery works for the fresh bot (its worker was replaced).
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "y")], timeout=10)
    assert receiver.texts() == ["x", "y"]
