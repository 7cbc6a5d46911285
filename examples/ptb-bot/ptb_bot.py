"""A python-telegram-bot 22 echo bot behind the tgbot-sidecar (PTB's custom-webhook pattern).

The Application runs without an Updater (the operator owns the webhook; nothing polls). A tiny
aiohttp server on the shared Unix socket puts each update on ``application.update_queue`` and
answers 200 at once.

The trade-off, honestly: PTB handles updates from its queue in the background, so the sidecar
(and Telegram) get 200 *before* the handler runs. There are no webhook replies - the echo is an
outgoing ``sendMessage`` call needing ``BOT_TOKEN`` - and a failing handler does not make
Telegram retry. The aiogram example answers after handling and does both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

APPLICATION = web.AppKey("application", Application)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


def build_application(token: str, api_server: str | None = None) -> Application:  # type: ignore[type-arg]
    builder = Application.builder().token(token).updater(None)
    if api_server:
        base = api_server.rstrip("/")
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    return application


async def receive(request: web.Request) -> web.Response:
    application = request.app[APPLICATION]
    try:
        update = Update.de_json(await request.json(), application.bot)
    except ValueError:
        return web.Response(status=400)
    await application.update_queue.put(update)
    return web.Response()


def build_app(application: Application, path: str = "/webhook") -> web.Application:  # type: ignore[type-arg]
    app = web.Application()
    app[APPLICATION] = application
    app.router.add_post(path, receive)
    return app


async def serve(application: Application, socket_path: str, path: str) -> None:  # type: ignore[type-arg]
    runner = web.AppRunner(build_app(application, path), access_log=None)
    async with application:
        await application.start()
        await runner.setup()
        await web.UnixSite(runner, socket_path).start()
        await asyncio.to_thread(os.chmod, socket_path, 0o660)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await runner.cleanup()
        await application.stop()  # handles what is still queued


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    application = build_application(os.environ["BOT_TOKEN"], os.environ.get("TELEGRAM_API_SERVER"))
    asyncio.run(
        serve(
            application,
            os.environ.get("BOT_SOCKET", "/run/bot/bot.sock"),
            os.environ.get("BOT_WEBHOOK_PATH", "/webhook"),
        )
    )


if __name__ == "__main__":
    main()
