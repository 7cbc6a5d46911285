"""An unknown method answers 404 like Telegram and leaves one clear, token-free WARNING."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from tests.emulator.helpers import BOT_ID, TOKEN, BotApi, Receiver
from tgbot_emulator import EmulatorClient

NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno == logging.WARNING and "unknown Bot API method" in r.message
    ]


async def test_unknown_method_answers_404_and_warns_once(
    api: BotApi, client: EmulatorClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert await api.json("sendPoll", chat_id=1) == (404, NOT_FOUND)
    [record] = warnings(caplog)
    assert record.name == "tgbot_emulator.methods"
    assert "'sendPoll'" in record.message
    assert str(BOT_ID) in record.message
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    [call] = await client.calls(BOT_ID, method="sendPoll")
    assert (call["status"], call["description"]) == (404, "Not Found")


async def test_a_token_in_the_method_name_is_never_logged_or_recorded(
    api: BotApi, client: EmulatorClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, body = await api.json(f"x{TOKEN}y\x1b[31m")
    assert (status, body) == (404, NOT_FOUND)
    [record] = warnings(caplog)
    assert TOKEN not in record.message
    assert "\x1b" not in record.message
    assert "***" in record.message
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert all(TOKEN not in c["method"] for c in await client.calls(BOT_ID))


async def test_known_methods_do_not_warn(api: BotApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await api.ok("getMe")
    await api.json("editMessageText", chat_id=1, message_id=1, text="x")  # a 400, not unknown
    assert warnings(caplog) == []


async def test_an_unknown_method_in_a_webhook_reply_warns_too(
    api: BotApi, client: EmulatorClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def reply(request: web.Request, update: dict[str, object]) -> web.StreamResponse:
        return web.json_response({"method": "sendTeleportation", "chat_id": 1})

    receiver.behaviour = reply
    await api.ok("setWebhook", url=receiver.url)
    update_id = await client.send_user_message(BOT_ID, "go")
    await client.wait_delivered(BOT_ID, [update_id], timeout=10)
    [record] = warnings(caplog)
    assert "'sendTeleportation'" in record.message
    assert "webhook_reply" in record.message
    [call] = await client.calls(BOT_ID, method="sendTeleportation")
    assert (call["status"], call["via"]) == (404, "webhook_reply")
