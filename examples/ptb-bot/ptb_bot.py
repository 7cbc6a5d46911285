"""A python-telegram-bot 22 echo bot behind the tgbot-sidecar, served with ``tgbot_ptb``.

``tgbot_ptb.builder()`` is ``Application.builder()`` with the token from ``$BOT_TOKEN``, the
Bot API server from ``$BOT_API_SERVER`` (when set) and no Updater (the operator owns the
webhook; nothing polls). ``tgbot_ptb.run`` serves ``$BOT_SOCKET`` and answers each update only
after its handler finished, so a failing handler makes Telegram retry. PTB has no webhook
replies: the echo is an outgoing ``sendMessage``.
"""

from __future__ import annotations

import logging
import os

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

import tgbot_ptb


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None and update.effective_user is not None:
        await update.message.reply_text(f"Hello, {update.effective_user.first_name}!")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


def build_application() -> Application:  # type: ignore[type-arg]
    application = tgbot_ptb.builder().build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return application


def main() -> None:
    # INFO is safe: tgbot_ptb keeps httpx (which logs every URL, token included) at WARNING.
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    tgbot_ptb.run(build_application())


if __name__ == "__main__":
    main()
