"""Serve a python-telegram-bot Application on the sidecar's Unix socket.

Each request runs ``application.process_update`` through the Application's update processor
(so ``concurrent_updates`` still applies) and is answered only when it returned. PTB catches
handler exceptions itself and hands them to the error handlers; an error handler added here
notes them for the current request, which then answers 500 so Telegram retries - as aiogram
does with ``handle_in_background=False``. Handlers with ``block=False`` run in the background
and are not waited for: don't use them behind the sidecar.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes

from .environment import DEFAULT_DRAIN_TIMEOUT, SOCKET_MODE, BotEnvironment, wait_for_stop
from .http import UnixHttpServer
from .logs import keep_tokens_out_of_logs

log = logging.getLogger("tgbot_ptb")


AnyApplication = Application[Any, Any, Any, Any, Any, Any]

_failures: contextvars.ContextVar[list[BaseException] | None] = contextvars.ContextVar(
    "tgbot_ptb_failures", default=None
)


def builder(environment: BotEnvironment | None = None) -> ApplicationBuilder[Any, Any, Any, Any, Any, Any]:
    """``Application.builder()`` with the token, the Bot API server and no Updater."""
    env = environment or BotEnvironment.from_env()
    keep_tokens_out_of_logs(env.token)  # before the Bot exists: it logs its URL at DEBUG
    result = Application.builder().token(env.require_token()).updater(None)
    if env.api_server:
        base = env.api_server.rstrip("/")
        result = result.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    return result


async def _note_failure(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    failures = _failures.get()
    if failures is not None and context.error is not None:
        failures.append(context.error)
    if len(context.application.error_handlers) == 1:
        # We are the only error handler: log it as PTB would have without one.
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("update %s failed", update_id, exc_info=context.error)


def _handler(application: AnyApplication) -> Any:
    async def handle(body: bytes) -> tuple[int, bytes]:
        try:
            data = json.loads(body)
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError):
            return 400, b'{"error":"not an Update"}'
        failures: list[BaseException] = []
        token = _failures.set(failures)
        try:
            await application.update_processor.process_update(update, application.process_update(update))
        finally:
            _failures.reset(token)
        if failures:
            return 500, b'{"error":"the handler failed"}'
        return 200, b"{}"

    return handle


async def serve(
    application: AnyApplication,
    *,
    environment: BotEnvironment | None = None,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``), then drain and stop the Application.

    The lifecycle is ``run_polling``'s without the Updater: initialize, ``post_init``, start,
    serve; then stop accepting, finish the updates in flight (up to ``drain_timeout``), stop,
    ``post_stop``, shutdown, ``post_shutdown``.
    """
    env = environment or BotEnvironment.from_env()
    keep_tokens_out_of_logs(env.token)
    if application.updater is not None:
        raise ValueError("build the Application with .updater(None): the operator owns the webhook")
    application.add_error_handler(_note_failure)
    server = UnixHttpServer(env.webhook_path, _handler(application))
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        try:
            await server.start(env.socket)
            await asyncio.to_thread(os.chmod, env.socket, SOCKET_MODE)
            log.info("serving updates on %s at %s", env.socket, env.webhook_path)
            await wait_for_stop(stop)
            log.info("stopping: finishing the updates in flight (at most %.0f s)", drain_timeout)
            await server.drain(drain_timeout)
        finally:
            await asyncio.to_thread(Path(env.socket).unlink, missing_ok=True)
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
        application.remove_error_handler(_note_failure)
    log.info("stopped")


def run(application: AnyApplication, **kwargs: Any) -> None:
    """``asyncio.run(serve(...))`` - the whole main() of a PTB bot behind the sidecar."""
    asyncio.run(serve(application, **kwargs))
