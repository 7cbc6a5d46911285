"""Optional helper: serve an aiogram ``Dispatcher`` on a Unix socket for the sidecar.

Plain aiogram works just as well (see examples/echo-bot); this only saves the boilerplate.
The handler runs with ``handle_in_background=False`` - the answer goes back only after the
update was handled, so a failure reaches Telegram as an error (and a retry) and the webhook
reply can carry the handler's method call - and without ``secret_token``: the sidecar has
already checked it, and the socket is private to the pod.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

SOCKET_MODE = 0o660  # the sidecar shares the pod's fsGroup, nobody else needs the socket


def webhook_app(dispatcher: Dispatcher, bot: Bot, path: str = "/webhook", **data: Any) -> web.Application:
    app = web.Application()
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, handle_in_background=False, **data).register(
        app, path=path
    )
    setup_application(app, dispatcher, bot=bot)
    return app


async def start_on_unix_socket(
    dispatcher: Dispatcher, bot: Bot, socket_path: str | Path, path: str = "/webhook", **data: Any
) -> web.AppRunner:
    """Start serving; the caller owns the returned runner (``await runner.cleanup()``)."""
    runner = web.AppRunner(webhook_app(dispatcher, bot, path, **data), access_log=None)
    await runner.setup()
    site = web.UnixSite(runner, str(socket_path))
    await site.start()
    await asyncio.to_thread(os.chmod, socket_path, SOCKET_MODE)
    return runner


async def serve_on_unix_socket(
    dispatcher: Dispatcher, bot: Bot, socket_path: str | Path, path: str = "/webhook", **data: Any
) -> None:
    """Serve until cancelled (e.g. by ``asyncio.run`` on SIGINT)."""
    runner = await start_on_unix_socket(dispatcher, bot, socket_path, path, **data)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
