"""An aiogram 3 echo bot behind the tgbot-sidecar, answering through webhook replies.

It reads the environment of docs/bot-contract.md: it listens on the Unix socket shared with
the sidecar (``BOT_SOCKET``, default /run/tgbot/bot.sock) at ``BOT_WEBHOOK_PATH`` (default
/webhook), never calls setWebhook (the operator owns the webhook) and needs ``BOT_TOKEN`` only for
calls it makes itself - the echo goes back inside the webhook answer, so a plain echo makes no
outgoing call at all. ``BOT_API_SERVER`` optionally points outgoing calls at another Bot API
server (the emulator, a self-hosted telegram-bot-api).

Plain aiogram on purpose: ``tgbot_sidecar.aiogram.serve_on_unix_socket`` does the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command
from aiogram.methods import SendDocument, SendMessage
from aiogram.types import BufferedInputFile, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

#: The contract's defaults (docs/bot-contract.md), the values the telegram-bot chart sets.
DEFAULT_SOCKET = "/run/tgbot/bot.sock"
DEFAULT_WEBHOOK_PATH = "/webhook"

router = Router(name="echo")


@router.message(Command("file"))
async def send_file(message: Message) -> SendDocument:
    # Returning the method (not awaiting it) makes aiogram put it into the webhook reply; with
    # a file in it, aiogram answers multipart/form-data.
    content = (message.text or "").encode()
    return message.answer_document(BufferedInputFile(content, "echo.txt"))


@router.message(F.text)
async def echo(message: Message) -> SendMessage:
    assert message.text is not None
    return message.answer(message.text)


def build_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


def build_bot(token: str, api_server: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_server)) if api_server else None
    return Bot(token, session=session)


def build_app(dispatcher: Dispatcher, bot: Bot, path: str = DEFAULT_WEBHOOK_PATH) -> web.Application:
    app = web.Application()
    # handle_in_background=False: answer after handling, so the reply can carry the method and a
    # failure becomes an HTTP error Telegram retries. No secret_token: the sidecar checked it.
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, handle_in_background=False).register(app, path=path)
    setup_application(app, dispatcher, bot=bot)
    return app


async def serve(socket_path: str, app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, socket_path).start()
    # The sidecar container shares the pod's fsGroup; nobody else needs the socket.
    await asyncio.to_thread(os.chmod, socket_path, 0o660)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # The sidecar drains first (it stops taking updates); finish what is still in flight.
    await runner.cleanup()


def api_server_from_env(environ: Mapping[str, str]) -> str | None:
    """``BOT_API_SERVER`` (docs/bot-contract.md): the chart sets it from telegramBot.botApiServer."""
    return environ.get("BOT_API_SERVER") or None


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    bot = build_bot(os.environ["BOT_TOKEN"], api_server_from_env(os.environ))
    app = build_app(build_dispatcher(), bot, os.environ.get("BOT_WEBHOOK_PATH") or DEFAULT_WEBHOOK_PATH)
    asyncio.run(serve(os.environ.get("BOT_SOCKET") or DEFAULT_SOCKET, app))


if __name__ == "__main__":
    main()
