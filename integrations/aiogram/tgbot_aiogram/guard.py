"""Refuse the Bot API calls that belong to the operator, with a message saying why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import DeleteWebhook, SetWebhook, TelegramMethod
from aiogram.methods.base import Response, TelegramType

if TYPE_CHECKING:
    from aiogram import Bot


class WebhookOwnedByOperatorError(RuntimeError):
    pass


class RefuseWebhookCalls(BaseRequestMiddleware):
    """setWebhook/deleteWebhook from the bot would replace the operator's URL and secret token."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, SetWebhook | DeleteWebhook):
            raise WebhookOwnedByOperatorError(
                f"{method.__api_method__} is the operator's job behind the tgbot-sidecar: "
                "remove this call from the bot (see docs/bot-contract.md)"
            )
        return await make_request(bot, method)


def install(bot: Any) -> None:
    """Add the guard once to the bot's session."""
    session = bot.session
    if not any(isinstance(m, RefuseWebhookCalls) for m in session.middleware):
        session.middleware(RefuseWebhookCalls())
