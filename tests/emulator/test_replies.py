"""Reply into webhook: a method in the webhook response body runs as the bot."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from tests.emulator.helpers import BOT_ID, BotApi, Receiver
from tgbot_emulator import EmulatorClient


def reply_json(extra: dict[str, Any] | None = None, method: str = "sendMessage") -> Any:
    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        message = update["message"]
        body = {"method": method, "chat_id": message["chat"]["id"], "text": f"echo: {message['text']}"}
        return web.json_response({**body, **(extra or {})})

    return behave


async def test_json_reply_sends_message(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    receiver.behaviour = reply_json(
        {"reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}}
    )
    await api.ok("setWebhook", url=receiver.url)
    update_id = await client.send_user_message(BOT_ID, "hi", user_id=77)
    await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    [sent] = await client.sent_messages(BOT_ID)
    assert sent["text"] == "echo: hi"
    assert sent["chat_id"] == 77
    assert sent["via"] == "webhook_reply"
    assert sent["reply_to_update_id"] == update_id
    assert sent["message"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "a"
    [call] = await client.calls(BOT_ID, method="sendMessage")
    assert (call["via"], call["status"]) == ("webhook_reply", 200)


async def test_urlencoded_reply(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        chat_id = update["message"]["chat"]["id"]
        return web.Response(
            text=f"method=sendMessage&chat_id={chat_id}&text=form+reply",
            content_type="application/x-www-form-urlencoded",
        )

    receiver.behaviour = behave
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    assert [s["text"] for s in await client.sent_messages(BOT_ID)] == ["form reply"]


async def test_multipart_reply(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        with aiohttp.MultipartWriter("form-data") as writer:
            for name, value in (
                ("method", "sendMessage"),
                ("chat_id", str(update["message"]["chat"]["id"])),
                ("text", "multipart reply"),
            ):
                part = writer.append(value)
                part.set_content_disposition("form-data", name=name)
        return web.Response(body=writer)

    receiver.behaviour = behave
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    assert [s["text"] for s in await client.sent_messages(BOT_ID)] == ["multipart reply"]


async def test_get_methods_and_webhook_changes_are_ignored(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    replies = iter(
        [
            {"method": "getMe"},
            {"method": "setWebhook", "url": ""},
            {"method": "deleteWebhook"},
            {"method": "logOut"},
        ]
    )

    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        return web.Response(text=json.dumps(next(replies)), content_type="application/json")

    receiver.behaviour = behave
    await api.ok("setWebhook", url=receiver.url)
    ids = [await client.send_user_message(BOT_ID, f"m{i}") for i in range(4)]
    await client.wait_delivered(BOT_ID, ids, timeout=10)
    assert (await api.ok("getWebhookInfo"))["url"] == receiver.url
    ignored = [c for c in await client.calls(BOT_ID) if c["via"] == "webhook_reply"]
    assert [(c["method"], c["status"]) for c in ignored] == [
        ("getMe", None),
        ("setWebhook", None),
        ("deleteWebhook", None),
        ("logOut", None),
    ]
    assert await client.sent_messages(BOT_ID) == []


async def test_failing_reply_still_counts_as_delivered(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        return web.json_response({"method": "sendMessage", "chat_id": 5, "text": ""})

    receiver.behaviour = behave
    await api.ok("setWebhook", url=receiver.url)
    update_id = await client.send_user_message(BOT_ID, "x")
    await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    [call] = await client.calls(BOT_ID, method="sendMessage")
    assert call["status"] == 400
    assert len(receiver.received) == 1


async def test_plain_text_or_empty_body_is_fine(
    api: BotApi, client: EmulatorClient, receiver: Receiver
) -> None:
    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        return web.Response(text="OK")

    receiver.behaviour = behave
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    assert await client.sent_messages(BOT_ID) == []


async def test_reply_body_arriving_in_pieces(api: BotApi, client: EmulatorClient, receiver: Receiver) -> None:
    async def behave(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        body = json.dumps({"method": "sendMessage", "chat_id": 3, "text": "slow " * 500}).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(body[:100])
        await asyncio.sleep(0.05)
        await response.write(body[100:])
        await response.write_eof()
        return response

    receiver.behaviour = behave
    await api.ok("setWebhook", url=receiver.url)
    await client.wait_delivered(BOT_ID, [await client.send_user_message(BOT_ID, "x")], timeout=10)
    [sent] = await client.sent_messages(BOT_ID)
    assert sent["text"] == "slow " * 500
