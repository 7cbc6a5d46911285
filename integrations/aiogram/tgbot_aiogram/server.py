"""Serve a Dispatcher on the sidecar's Unix socket and drain on SIGTERM.

Why not ``setup_application`` + ``SimpleRequestHandler.register``: both hook ``on_shutdown``,
which aiohttp's ``AppRunner.cleanup`` runs *before* it waits for in-flight requests
(sites stop -> idle connections close -> ``on_shutdown`` -> wait up to ``shutdown_timeout``
for running handlers -> ``on_cleanup``). The bot's session and the dispatcher's shutdown
hooks would then go away under a handler that is still running. Here they run in
``on_cleanup``, after the last in-flight update has been answered.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from . import guard
from .environment import DEFAULT_DRAIN_TIMEOUT, SOCKET_MODE, BotEnvironment, wait_for_stop

log = logging.getLogger("tgbot_aiogram")


def make_bot(environment: BotEnvironment | None = None, **kwargs: Any) -> Bot:
    """A Bot from ``$BOT_TOKEN`` that calls ``$BOT_API_SERVER`` when it is set."""
    env = environment or BotEnvironment.from_env()
    if env.api_server and "session" not in kwargs:
        kwargs["session"] = AiohttpSession(api=TelegramAPIServer.from_base(env.api_server))
    return Bot(env.require_token(), **kwargs)


def _point_at_api_server(bot: Bot, api_server: str | None) -> None:
    # A bot built as aiogram's docs build it (Bot(token)) talks to api.telegram.org; the
    # environment names the server it must use instead (the emulator, a self-hosted one).
    # A server the bot chose itself is left alone.
    if api_server and bot.session.api == PRODUCTION:
        bot.session.api = TelegramAPIServer.from_base(api_server)
        log.info("calling the Bot API at %s (BOT_API_SERVER)", api_server)


def webhook_app(dispatcher: Dispatcher, bot: Bot, path: str, **data: Any) -> web.Application:
    """The aiohttp application: one POST route, the update handled before the answer."""
    app = web.Application()
    # handle_in_background=False: the sidecar's 200 means "handled"; a failure is a 500 that
    # Telegram retries, and the answer can carry the handler's method (a webhook reply).
    # No secret_token: the sidecar checked it, and the socket is private to the pod.
    handler = SimpleRequestHandler(dispatcher=dispatcher, bot=bot, handle_in_background=False, **data)
    app.router.add_post(path, handler.handle)
    workflow = {"app": app, "dispatcher": dispatcher, "bot": bot, **dispatcher.workflow_data, **data}

    async def startup(_: web.Application) -> None:
        await dispatcher.emit_startup(**workflow)

    async def cleanup(_: web.Application) -> None:
        try:
            await dispatcher.emit_shutdown(**workflow)
        finally:
            await bot.session.close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


async def serve(
    dispatcher: Dispatcher,
    bot: Bot | None = None,
    *,
    environment: BotEnvironment | None = None,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    stop: asyncio.Event | None = None,
    **data: Any,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``), then drain and return.

    Draining: the socket stops accepting, idle keep-alive connections close, the updates in
    flight finish and are answered (up to ``drain_timeout`` seconds, then cancelled), and only
    then the dispatcher's shutdown hooks run and the bot's session closes.
    """
    env = environment or BotEnvironment.from_env()
    bot = bot if bot is not None else make_bot(env)
    _point_at_api_server(bot, env.api_server)
    guard.install(bot)
    runner = web.AppRunner(
        webhook_app(dispatcher, bot, env.webhook_path, **data),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=drain_timeout,
    )
    await runner.setup()
    try:
        await web.UnixSite(runner, env.socket).start()
        await asyncio.to_thread(os.chmod, env.socket, SOCKET_MODE)
        log.info("serving updates on %s at %s", env.socket, env.webhook_path)
        await wait_for_stop(stop)
        log.info("stopping: finishing the updates in flight (at most %.0f s)", drain_timeout)
    finally:
        await runner.cleanup()
        await asyncio.to_thread(Path(env.socket).unlink, missing_ok=True)
    log.info("stopped")


def run(dispatcher: Dispatcher, bot: Bot | None = None, **kwargs: Any) -> None:
    """``asyncio.run(serve(...))`` - the whole main() of a bot behind the sidecar."""
    asyncio.run(serve(dispatcher, bot, **kwargs))
