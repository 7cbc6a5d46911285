"""The bot contract's side of a helper: environment, socket mode, drain timeout, stop signals.

Why a copy of tgbot_ptb/environment.py and not one shared module: each helper is its own
distribution that needs only its framework (aiogram, or python-telegram-bot). Sharing these
~70 lines would take a third distribution every bot must install (and keep in step), for
code that changes only with docs/bot-contract.md. tests/botkit/test_helpers.py checks that
the two copies stay identical below this docstring.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Where the telegram-bot chart mounts the socket shared with the sidecar.
DEFAULT_SOCKET = "/run/tgbot/bot.sock"
#: The path the chart's sidecar forwards to (``--upstream=http://bot/webhook``).
DEFAULT_WEBHOOK_PATH = "/webhook"


class ContractError(RuntimeError):
    """The environment does not describe a usable bot (the message says which variable)."""


@dataclass(frozen=True)
class BotEnvironment:
    socket: str = DEFAULT_SOCKET
    webhook_path: str = DEFAULT_WEBHOOK_PATH
    api_server: str | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BotEnvironment:
        env = os.environ if environ is None else environ
        path = env.get("BOT_WEBHOOK_PATH") or DEFAULT_WEBHOOK_PATH
        if not path.startswith("/"):
            raise ContractError(f"BOT_WEBHOOK_PATH must start with '/', got {path!r}")
        api_server = env.get("BOT_API_SERVER") or None
        if api_server is not None and not api_server.startswith(("http://", "https://")):
            raise ContractError("BOT_API_SERVER must be an http:// or https:// URL")
        return cls(
            socket=env.get("BOT_SOCKET") or DEFAULT_SOCKET,
            webhook_path=path,
            api_server=api_server,
            token=env.get("BOT_TOKEN") or None,
        )

    def require_token(self) -> str:
        if not self.token:
            raise ContractError("BOT_TOKEN is not set")
        return self.token


#: The sidecar shares the pod's fsGroup; nobody else needs the socket.
SOCKET_MODE = 0o660
#: As long as the sidecar's default --drain-timeout: it answers 503 to what is still in
#: flight after that, so waiting longer would finish updates Telegram redelivers anyway.
DEFAULT_DRAIN_TIMEOUT = 25.0


async def wait_for_stop(stop: asyncio.Event | None) -> None:
    """Until SIGTERM (the pod stops), SIGINT (Ctrl-C) or ``stop``; then the caller drains."""
    event = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, event.set)
    try:
        await event.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
