"""The Bot API surface: auth, bodies, errors, faults, rate limits and methods."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.emulator.helpers import BOT_ID, TOKEN, BotApi
from tgbot_emulator import BotSpec, EmulatorClient, EmulatorConfig, EmulatorServer

UNAUTHORIZED = {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_unknown_token_is_unauthorized(api: BotApi) -> None:
    assert await api.json("getMe", token="999:NOPE") == (401, UNAUTHORIZED)
    assert await api.json("getMe", token="123456:WRONG") == (401, UNAUTHORIZED)
    assert await api.json("getMe", token="garbage") == (401, UNAUTHORIZED)


async def test_revoked_token_is_unauthorized(api: BotApi, client: EmulatorClient) -> None:
    new_token = "123456:NEW_TOKEN_xyz"
    bot = await client.replace_token(BOT_ID, new_token)
    assert bot["token_redacted"] == "123456:***"
    assert await api.json("getMe") == (401, UNAUTHORIZED)
    status, body = await api.json("getMe", token=new_token)
    assert status == 200
    assert body["result"]["id"] == BOT_ID


async def test_unknown_method_is_not_found(api: BotApi) -> None:
    assert await api.json("fooBar") == (404, {"ok": False, "error_code": 404, "description": "Not Found"})


async def test_method_names_are_case_insensitive(api: BotApi) -> None:
    status, body = await api.json("GETME")
    assert status == 200
    assert body["result"]["username"] == "test_bot"


async def test_get_me(api: BotApi) -> None:
    me = await api.ok("getMe")
    assert me["id"] == BOT_ID
    assert me["is_bot"] is True
    assert me["username"] == "test_bot"


@pytest.mark.parametrize("style", ["json", "form", "query", "multipart"])
async def test_every_body_style_is_accepted(api: BotApi, style: str) -> None:
    params = {"url": "https://a.example.com/hook", "secret_token": "s3cr3t", "max_connections": "7"}
    params["allowed_updates"] = json.dumps(["message", "callback_query"])
    params["drop_pending_updates"] = "true"
    if style == "json":
        typed: dict[str, Any] = {
            **params,
            "max_connections": 7,
            "allowed_updates": ["message", "callback_query"],
        }
        status, body = await api.json("setWebhook", **{**typed, "drop_pending_updates": True})
    else:
        status, body = await getattr(api, style)("setWebhook", **params)
    assert status == 200, body
    info = await api.ok("getWebhookInfo")
    assert info["url"] == "https://a.example.com/hook"
    assert info["max_connections"] == 7
    assert info["allowed_updates"] == ["message", "callback_query"]


async def test_form_booleans_are_strings(api: BotApi, client: EmulatorClient) -> None:
    await client.send_user_message(BOT_ID, "queued")
    await api.form("setWebhook", url="https://a.example.com/", drop_pending_updates="false")
    assert (await api.ok("getWebhookInfo"))["pending_update_count"] == 1
    await api.form("setWebhook", url="https://a.example.com/", drop_pending_updates="true")
    assert (await api.ok("getWebhookInfo"))["pending_update_count"] == 0


async def test_malformed_json_body(api: BotApi) -> None:
    async with api.session.post(
        api.url("getMe"), data=b"{nope", headers={"Content-Type": "application/json"}
    ) as response:
        body = await response.json()
    assert response.status == 400
    assert body["error_code"] == 400


async def test_already_set_and_already_deleted(api: BotApi) -> None:
    url = "https://a.example.com/hook"
    assert await api.json("setWebhook", url=url) == (
        200,
        {"ok": True, "result": True, "description": "Webhook was set"},
    )
    assert await api.json("setWebhook", url=url) == (
        200,
        {"ok": True, "result": True, "description": "Webhook is already set"},
    )
    # A different secret is a different webhook.
    assert (await api.json("setWebhook", url=url, secret_token="x"))[1]["description"] == "Webhook was set"
    assert (await api.json("deleteWebhook"))[1] == {
        "ok": True,
        "result": True,
        "description": "Webhook was deleted",
    }
    assert (await api.json("deleteWebhook"))[1]["description"] == "Webhook is already deleted"
    # An empty url removes the webhook too.
    await api.ok("setWebhook", url=url)
    assert (await api.json("setWebhook", url=""))[1]["description"] == "Webhook was deleted"


async def test_webhook_info_fields_appear_only_when_they_should(api: BotApi, client: EmulatorClient) -> None:
    empty = await api.ok("getWebhookInfo")
    assert empty == {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    await api.ok("setWebhook", url="http://127.0.0.1:1/hook")
    info = await api.ok("getWebhookInfo")
    assert info == {
        "url": "http://127.0.0.1:1/hook",
        "has_custom_certificate": False,
        "pending_update_count": 0,
        "max_connections": 40,
    }
    # Port 1 refuses connections: after a failed delivery the error fields appear.
    await client.send_user_message(BOT_ID, "hello")

    async def has_error() -> Any:
        while "last_error_date" not in (info := await api.ok("getWebhookInfo")):
            await asyncio.sleep(0.02)
        return info

    info = await asyncio.wait_for(has_error(), 10)
    assert info["last_error_message"] == "Connection refused"
    assert isinstance(info["last_error_date"], int)
    assert info["pending_update_count"] == 1
    assert "allowed_updates" not in info
    assert "ip_address" not in info

    await api.ok(
        "setWebhook", url="http://127.0.0.1:1/hook", allowed_updates=["message"], ip_address="127.0.0.1"
    )
    info = await api.ok("getWebhookInfo")
    assert info["allowed_updates"] == ["message"]
    assert info["ip_address"] == "127.0.0.1"


async def test_allowed_updates_empty_list_means_default_and_omitted_keeps(api: BotApi) -> None:
    await api.ok("setWebhook", url="https://a.example.com/", allowed_updates=["callback_query"])
    await api.ok("setWebhook", url="https://b.example.com/")
    assert (await api.ok("getWebhookInfo"))["allowed_updates"] == ["callback_query"]
    await api.ok("setWebhook", url="https://c.example.com/", allowed_updates=[])
    assert "allowed_updates" not in await api.ok("getWebhookInfo")


async def test_get_updates_conflicts_with_webhook(api: BotApi) -> None:
    await api.ok("setWebhook", url="https://a.example.com/")
    status, body = await api.json("getUpdates")
    assert status == 409
    assert body["description"] == (
        "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first"
    )


async def test_get_updates_offset_and_limit(api: BotApi, client: EmulatorClient) -> None:
    ids = [await client.send_user_message(BOT_ID, f"m{i}") for i in range(3)]
    updates = await api.ok("getUpdates", limit=2)
    assert [u["update_id"] for u in updates] == ids[:2]
    assert updates[0]["message"]["text"] == "m0"
    updates = await api.ok("getUpdates", offset=ids[1] + 1)
    assert [u["update_id"] for u in updates] == ids[2:]
    states = {u["update_id"]: u["state"] for u in await client.updates(BOT_ID)}
    assert states == {ids[0]: "delivered", ids[1]: "delivered", ids[2]: "pending"}


async def test_get_updates_long_poll_wakes_on_new_update(api: BotApi, client: EmulatorClient) -> None:
    poll = asyncio.create_task(api.ok("getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    assert not poll.done()
    update_id = await client.send_user_message(BOT_ID, "wake up")
    updates = await asyncio.wait_for(poll, 5)
    assert [u["update_id"] for u in updates] == [update_id]


async def test_send_message_returns_a_message(api: BotApi, client: EmulatorClient) -> None:
    await client.send_user_message(BOT_ID, "hi", user_id=42)
    message = await api.ok("sendMessage", chat_id=42, text="hello there")
    assert message["text"] == "hello there"
    assert message["chat"]["id"] == 42
    assert message["chat"]["type"] == "private"
    assert message["from"]["id"] == BOT_ID
    assert message["from"]["is_bot"] is True
    assert message["message_id"] == 2  # after the user's message 1 in that chat
    assert isinstance(message["date"], int)
    sent = await client.sent_messages(BOT_ID)
    assert [(s["chat_id"], s["text"], s["via"]) for s in sent] == [(42, "hello there", "api")]
    assert "reply_to_update_id" not in sent[0]


async def test_send_message_errors(api: BotApi) -> None:
    status, body = await api.json("sendMessage", chat_id=1, text="")
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, body = await api.json("sendMessage", text="x")
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")
    status, body = await api.json("sendMessage", chat_id=1, text="x" * 4097)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")


async def test_harmless_methods_return_true(api: BotApi) -> None:
    assert await api.ok("sendChatAction", chat_id=1, action="typing") is True
    assert await api.ok("logOut") is True
    assert await api.ok("close") is True


async def test_every_call_is_recorded_with_secrets_hidden(api: BotApi, client: EmulatorClient) -> None:
    await api.ok("getMe")
    await api.json("setWebhook", url="https://a.example.com/", secret_token="topsecret")
    await api.json("fooBar")
    calls = await client.calls(BOT_ID)
    assert [(c["method"], c["status"], c["via"]) for c in calls] == [
        ("getMe", 200, "api"),
        ("setWebhook", 200, "api"),
        ("fooBar", 404, "api"),
    ]
    only = await client.calls(BOT_ID, method="setWebhook")
    assert len(only) == 1
    assert only[0]["params"]["secret_token"] == "***"
    revealed = await client.calls(BOT_ID, method="setwebhook", reveal_secrets=True)
    assert revealed[0]["params"]["secret_token"] == "topsecret"


@pytest.mark.looptime  # the one-second interval passes on the virtual clock
async def test_setwebhook_rate_limit(api: BotApi, client: EmulatorClient, server: EmulatorServer) -> None:
    server.config.setwebhook_rate_limit = True
    await api.ok("setWebhook", url="https://a.example.com/")
    # Same settings again, or a new secret on the same URL, are not limited.
    assert (await api.json("setWebhook", url="https://a.example.com/"))[0] == 200
    assert (await api.json("setWebhook", url="https://a.example.com/", secret_token="rotated"))[0] == 200
    status, body = await api.json("setWebhook", url="https://b.example.com/")
    assert status == 429
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert (await api.ok("getWebhookInfo"))["url"] == "https://a.example.com/"
    await asyncio.sleep(1.05)
    assert (await api.json("setWebhook", url="https://b.example.com/"))[0] == 200


@pytest.fixture
async def limited_api() -> AsyncIterator[BotApi]:
    config = EmulatorConfig(
        port=0, global_rate_limit_per_second=2, bots=[BotSpec(token=TOKEN, username="test_bot")]
    )
    async with EmulatorServer(config) as server, aiohttp.ClientSession() as session:
        yield BotApi(session, server.url)


async def test_global_rate_limit(limited_api: BotApi) -> None:
    statuses = [(await limited_api.json("getMe"))[0] for _ in range(4)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    status, body = await limited_api.json("getMe")
    if status == 429:
        assert body["parameters"]["retry_after"] >= 1


async def test_fault_429_with_retry_after(api: BotApi, client: EmulatorClient) -> None:
    await client.add_fault("429", count=2, method="sendMessage", retry_after=7)
    assert (await api.json("getMe"))[0] == 200  # other methods are not affected
    for _ in range(2):
        status, body = await api.json("sendMessage", chat_id=1, text="x")
        assert status == 429
        assert body == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        }
    assert (await api.json("sendMessage", chat_id=1, text="x"))[0] == 200
    recorded = await client.calls(BOT_ID, method="sendMessage")
    assert [c["status"] for c in recorded] == [429, 429, 200]


async def test_fault_500_and_502(api: BotApi, client: EmulatorClient) -> None:
    await client.add_fault("500")
    assert await api.json("getMe") == (
        500,
        {"ok": False, "error_code": 500, "description": "Internal Server Error"},
    )
    await client.add_fault("502", bot_id=BOT_ID)
    async with api.session.get(api.url("getMe")) as response:
        assert response.status == 502
        assert "502 Bad Gateway" in await response.text()
    assert (await api.json("getMe"))[0] == 200


async def test_fault_for_another_bot_does_not_match(api: BotApi, client: EmulatorClient) -> None:
    await client.add_fault("500", bot_id=999)
    assert (await api.json("getMe"))[0] == 200
    assert len(await client.faults()) == 1
    await client.clear_faults()
    assert await client.faults() == []


async def test_fault_drop_closes_connection(api: BotApi, client: EmulatorClient) -> None:
    await client.add_fault("drop", method="getMe")
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.json("getMe")
    assert (await api.json("getMe"))[0] == 200
    assert [c["status"] for c in await client.calls(BOT_ID, method="getMe")] == [None, 200]
