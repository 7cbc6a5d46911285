"""An aiogram bot whose "slow" handler takes 5 s, served with tgbot_aiogram (test fixture)."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiogram import Dispatcher, F
from aiogram.methods import SendMessage
from aiogram.types import Message

import tgbot_aiogram

SLOW_SECONDS = 5.0

dp = Dispatcher()


@dp.message(F.text == "slow")
async def slow(message: Message) -> SendMessage:
    print("handler started", flush=True)
    await asyncio.sleep(SLOW_SECONDS)
    # An API call after SIGTERM: the bot's session must still be open...
    await message.answer("api call after the wait")
    print("handler finished", flush=True)
    # ...and the webhook reply must still reach Telegram.
    return message.answer("reply after the wait")


@dp.shutdown()
async def shutdown() -> None:
    # aiohttp's on_shutdown would run this before the slow handler is done; it must run after.
    print("dispatcher shutdown", flush=True)


@dp.message(F.text)
async def echo(message: Message) -> None:
    await message.answer(message.text or "")


if __name__ == "__main__":
    # DEBUG everywhere: the token scan must hold at the chattiest level.
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    tgbot_aiogram.run(dp, drain_timeout=20)
