"""python-telegram-bot's Bot against the emulator's newer methods: a second, independent client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest

from tests.emulator.helpers import BOT_ID, TOKEN
from tests.emulator.test_media import png
from tgbot_emulator import EmulatorClient, EmulatorServer

USER = 100_000_001


@pytest.fixture
async def bot(server: EmulatorServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=f"{server.url}/bot", base_file_url=f"{server.url}/file/bot") as running:
        yield running


async def test_ptb_profile_and_messages(bot: Bot, client: EmulatorClient) -> None:
    groups = BotCommandScopeAllGroupChats()
    assert await bot.set_my_commands([BotCommand("start", "Start"), ("stop", "Stop")], scope=groups)
    assert [(c.command, c.description) for c in await bot.get_my_commands(scope=groups)] == [
        ("start", "Start"),
        ("stop", "Stop"),
    ]
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match=r"(?i)command description must be non-empty"):
        await bot.set_my_commands([BotCommand("start", " ")])

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    message = await bot.send_message(USER, "ready?", reply_markup=keyboard)
    pressed = await client.press_button(BOT_ID, message.message_id, callback_data="go")
    assert await bot.answer_callback_query(pressed["callback_query_id"], text="Going")
    edited = await bot.edit_message_text("gone", chat_id=USER, message_id=message.message_id)
    assert not isinstance(edited, bool)
    assert edited.text == "gone"
    photo = await bot.send_photo(USER, png(8, 8), caption="tiny")
    assert photo.photo[-1].width == 8
    assert await bot.delete_message(USER, photo.message_id)
    lines = await client.transcript(BOT_ID, USER)
    assert [(m["text"] or m["caption"], m["edited"], m["deleted"]) for m in lines] == [
        ("gone", True, False),
        ("tiny", False, True),
    ]
