"""A python-telegram-bot bot whose "slow" handler takes 5 s, served with tgbot_ptb (test fixture)."""

from __future__ import annotations

import asyncio
import logging
import sys

from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

import tgbot_ptb

SLOW_SECONDS = 5.0


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    if update.message.text == "slow":
        print("handler started", flush=True)
        await asyncio.sleep(SLOW_SECONDS)
        await update.message.reply_text("reply after the wait")
        print("handler finished", flush=True)
    elif update.message.text == "fail":
        raise RuntimeError("this handler always fails")
    else:
        await update.message.reply_text(update.message.text or "")


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    application = tgbot_ptb.builder().build()
    application.add_handler(MessageHandler(filters.TEXT, on_text))
    tgbot_ptb.run(application, drain_timeout=20)
