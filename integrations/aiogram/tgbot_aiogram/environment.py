"""The bot contract's environment: where to serve, which path, which Bot API server."""

from __future__ import annotations

import os
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
