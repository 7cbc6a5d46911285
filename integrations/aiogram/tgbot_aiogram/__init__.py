"""Serve an aiogram 3 Dispatcher behind the tgbot-sidecar (see docs/bot-contract.md)."""

from .environment import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_SOCKET,
    DEFAULT_WEBHOOK_PATH,
    BotEnvironment,
    ContractError,
)
from .guard import WebhookOwnedByOperatorError
from .server import make_bot, run, serve, webhook_app

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_SOCKET",
    "DEFAULT_WEBHOOK_PATH",
    "BotEnvironment",
    "ContractError",
    "WebhookOwnedByOperatorError",
    "make_bot",
    "run",
    "serve",
    "webhook_app",
]
