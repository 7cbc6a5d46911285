"""Serve a python-telegram-bot 22 Application behind the tgbot-sidecar (see docs/bot-contract.md)."""

from .environment import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_SOCKET,
    DEFAULT_WEBHOOK_PATH,
    BotEnvironment,
    ContractError,
)
from .logs import keep_tokens_out_of_logs
from .server import builder, run, serve

# On import, i.e. before the user builds a Bot (PTB logs the token-bearing URL at DEBUG then).
keep_tokens_out_of_logs()

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_SOCKET",
    "DEFAULT_WEBHOOK_PATH",
    "BotEnvironment",
    "ContractError",
    "builder",
    "keep_tokens_out_of_logs",
    "run",
    "serve",
]
