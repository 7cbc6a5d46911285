"""The Bot API methods the emulator knows, and running one call (recorded in the history)."""

from __future__ import annotations

import logging
import re
from typing import Any

from . import chats, editing, media, messaging, profile_methods, webhook_methods
from .context import CallContext, Handler, MethodResult
from .errors import NOT_FOUND, ApiError
from .params import Params, UploadedFile
from .validation import fingerprint
from .webhook_methods import webhook_info

__all__ = ["METHODS", "CallContext", "MethodResult", "execute", "stored_params", "webhook_info"]

log = logging.getLogger(__name__)

_P = profile_methods
METHODS: dict[str, tuple[str, Handler]] = {
    name.lower(): (name, handler)
    for name, handler in (
        ("getMe", webhook_methods.get_me),
        ("setWebhook", webhook_methods.set_webhook),
        ("deleteWebhook", webhook_methods.delete_webhook),
        ("getWebhookInfo", webhook_methods.get_webhook_info),
        ("getUpdates", webhook_methods.get_updates),
        ("logOut", webhook_methods.log_out),
        ("close", webhook_methods.log_out),
        ("sendMessage", messaging.send_message),
        ("copyMessage", messaging.copy_message),
        ("forwardMessage", messaging.forward_message),
        ("deleteMessage", messaging.delete_message),
        ("sendPhoto", media.send_photo),
        ("sendDocument", media.send_document),
        ("editMessageText", editing.edit_message_text),
        ("editMessageCaption", editing.edit_message_caption),
        ("editMessageReplyMarkup", editing.edit_message_reply_markup),
        ("getChat", chats.get_chat),
        ("sendChatAction", chats.send_chat_action),
        ("answerCallbackQuery", chats.answer_callback_query),
        ("setMyCommands", _P.set_my_commands),
        ("getMyCommands", _P.get_my_commands),
        ("deleteMyCommands", _P.delete_my_commands),
        *_P.TEXT_METHODS.items(),
        ("setChatMenuButton", _P.set_chat_menu_button),
        ("getChatMenuButton", _P.get_chat_menu_button),
        ("setMyDefaultAdministratorRights", _P.set_my_default_administrator_rights),
        ("getMyDefaultAdministratorRights", _P.get_my_default_administrator_rights),
    )
}

# What of an unknown method name goes into the log: a bounded, printable, token-free name.
_TOKEN_LIKE = re.compile(r"\d{3,}:[A-Za-z0-9_-]+")
_LOGGED_NAME_LIMIT = 64


def loggable_method(method: str, token: str) -> str:
    """The method name as it may be logged: never the token, no control characters."""
    name = method.replace(token, "***") if token else method
    name = _TOKEN_LIKE.sub("***", name)
    name = "".join(ch if ch.isprintable() else "?" for ch in name)
    return name if len(name) <= _LOGGED_NAME_LIMIT else name[:_LOGGED_NAME_LIMIT] + "..."


def stored_params(params: Params) -> Params:
    """What the call history keeps: uploaded files as name and hash, not their bytes."""
    out: Params = {}
    for key, value in params.items():
        if isinstance(value, UploadedFile):
            out[key] = {"filename": value.filename, "sha256": fingerprint(value)}
        else:
            out[key] = value
    return out


async def execute(ctx: CallContext, method: str, params: Params) -> tuple[int, dict[str, Any]]:
    """Run one Bot API method and record the call; returns (HTTP status, JSON body)."""
    entry = METHODS.get(method.lower())
    try:
        if entry is None:
            method = loggable_method(method, ctx.bot.token)
            log.warning(
                "unknown Bot API method %r called by bot %s (%s); answered 404 Not Found, like Telegram",
                method,
                ctx.bot.id,
                ctx.via,
            )
            raise NOT_FOUND
        outcome = await entry[1](ctx, params)
    except ApiError as error:
        ctx.state.record_call(ctx.bot, method, stored_params(params), error.code, ctx.via, error.description)
        return error.code, error.body()
    ctx.state.record_call(ctx.bot, entry[0], stored_params(params), 200, ctx.via, outcome.description)
    return 200, outcome.body()
