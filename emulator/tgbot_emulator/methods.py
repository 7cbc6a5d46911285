"""Bot API methods: what each one does to the state and what it answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .config import EmulatorConfig
from .errors import NOT_FOUND, WEBHOOK_CONFLICT, ApiError, bad_request, too_many_requests
from .params import Params, UploadedFile, get_int, get_json, get_str
from .state import Bot, EmulatorState, Via
from .updates import make_chat, make_message
from .validation import WebhookRequest, fingerprint, parse_allowed_updates, parse_set_webhook

log = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 4096
SETWEBHOOK_INTERVAL_SECONDS = 1.0


@dataclass
class CallContext:
    state: EmulatorState
    config: EmulatorConfig
    bot: Bot
    via: Via = "api"
    reply_to_update_id: int | None = None


@dataclass
class MethodResult:
    result: Any
    description: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": True, "result": self.result}
        if self.description is not None:
            out["description"] = self.description
        return out


Handler = Callable[[CallContext, Params], Awaitable[MethodResult]]


async def get_me(ctx: CallContext, params: Params) -> MethodResult:
    return MethodResult(
        {
            **ctx.bot.user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
    )


async def set_webhook(ctx: CallContext, params: Params) -> MethodResult:
    request = parse_set_webhook(params, allow_local=ctx.config.allow_local_webhooks)
    return apply_webhook(ctx, request)


async def delete_webhook(ctx: CallContext, params: Params) -> MethodResult:
    request = parse_set_webhook(params, allow_local=ctx.config.allow_local_webhooks, url_param=False)
    return apply_webhook(ctx, request)


def apply_webhook(ctx: CallContext, request: WebhookRequest) -> MethodResult:
    state, bot, current = ctx.state, ctx.bot, ctx.bot.webhook
    if not request.url:
        _apply_update_options(ctx, request)
        if current is None:
            return MethodResult(True, "Webhook is already deleted")
        state.delete_webhook(bot)
        return MethodResult(True, "Webhook was deleted")
    unchanged = (
        current is not None
        and current.url == request.url
        # A (re)uploaded certificate always counts as a change, as in Telegram.
        and current.certificate is None
        and request.certificate is None
        and current.secret_token == request.secret_token
        and current.ip_address == request.ip_address
        and current.max_connections == request.max_connections
        and not request.drop_pending_updates
    )
    if unchanged:
        _apply_update_options(ctx, request)
        return MethodResult(True, "Webhook is already set")
    # Telegram refuses a second *new* URL within a second; other changes (a rotated
    # secret on the same URL) go through.
    last = bot.last_webhook_change_at
    if (
        ctx.config.setwebhook_rate_limit
        and (current is None or current.url != request.url)
        and last is not None
        and time.monotonic() - last < SETWEBHOOK_INTERVAL_SECONDS
    ):
        raise too_many_requests(1)
    _apply_update_options(ctx, request)
    state.set_webhook(
        bot,
        url=request.url,
        secret_token=request.secret_token,
        certificate=request.certificate,
        ip_address=request.ip_address,
        max_connections=request.max_connections,
    )
    return MethodResult(True, "Webhook was set")


def _apply_update_options(ctx: CallContext, request: WebhookRequest) -> None:
    if request.allowed_updates_given:
        ctx.bot.allowed_updates = request.allowed_updates
    ctx.bot.drop_pending_updates_applied = request.drop_pending_updates
    if request.drop_pending_updates:
        ctx.state.drop_pending(ctx.bot)
    ctx.state.changed.fire()


async def get_webhook_info(ctx: CallContext, params: Params) -> MethodResult:
    return MethodResult(webhook_info(ctx.bot))


def webhook_info(bot: Bot) -> dict[str, Any]:
    """getWebhookInfo's answer: optional fields appear only when Telegram shows them."""
    webhook = bot.webhook
    info: dict[str, Any] = {
        "url": webhook.url if webhook else "",
        "has_custom_certificate": bool(webhook and webhook.certificate),
        "pending_update_count": bot.pending_count(),
    }
    if webhook is None:
        return info
    if webhook.ip_address:
        info["ip_address"] = webhook.ip_address
    if bot.last_error_date is not None:
        info["last_error_date"] = bot.last_error_date
        info["last_error_message"] = bot.last_error_message
    info["max_connections"] = webhook.max_connections
    if bot.allowed_updates is not None:
        info["allowed_updates"] = list(bot.allowed_updates)
    return info


async def get_updates(ctx: CallContext, params: Params) -> MethodResult:
    state, bot = ctx.state, ctx.bot
    if bot.webhook is not None:
        raise WEBHOOK_CONFLICT
    offset = get_int(params, "offset", 0) or 0
    limit = max(1, min(get_int(params, "limit", 100) or 100, 100))
    timeout = max(0.0, min(float(get_int(params, "timeout", 0) or 0), ctx.config.max_long_poll_seconds))
    given, allowed = parse_allowed_updates(params)
    if given:
        bot.allowed_updates = allowed
    # An offset confirms every update before it; a negative one forgets all but the last -offset.
    pending = bot.pending()
    if offset < 0:
        for record in pending[:offset]:
            state.mark_delivered(bot, record, "getUpdates")
    else:
        for record in pending:
            if record.update_id < offset:
                state.mark_delivered(bot, record, "getUpdates")
    deadline = time.monotonic() + timeout
    while True:
        state.drop_filtered(bot)
        ready = [r for r in bot.pending() if r.update_id >= offset]
        remaining = deadline - time.monotonic()
        if ready or remaining <= 0 or bot.webhook is not None or state.bots.get(bot.id) is not bot:
            return MethodResult([r.payload for r in ready[:limit]])
        await state.changed.wait(remaining)


def _chat_id(ctx: CallContext, params: Params) -> int:
    raw = params.get("chat_id")
    if raw is None or raw == "":
        raise bad_request("chat_id is empty")
    if isinstance(raw, str) and raw.startswith("@"):
        for chat in ctx.bot.chats.values():
            if chat.get("username", "").lower() == raw[1:].lower():
                return int(chat["id"])
        raise bad_request("chat not found")
    chat_id = get_int(params, "chat_id")
    if not chat_id:
        raise bad_request("chat not found")
    return chat_id


async def send_message(ctx: CallContext, params: Params) -> MethodResult:
    bot = ctx.bot
    chat_id = _chat_id(ctx, params)
    text = get_str(params, "text") or ""
    if not text.strip():
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    chat = bot.chats.get(chat_id) or make_chat(chat_id, bot.users.get(chat_id))
    message = make_message(bot.next_message_id(chat_id), chat, bot.user, text)
    markup = get_json(params, "reply_markup")
    if isinstance(markup, dict):
        message["reply_markup"] = markup
    ctx.state.record_sent(bot, message, ctx.via, ctx.reply_to_update_id)
    return MethodResult(message)


async def send_chat_action(ctx: CallContext, params: Params) -> MethodResult:
    _chat_id(ctx, params)
    if not get_str(params, "action"):
        raise bad_request("action is empty")
    return MethodResult(True)


async def answer_callback_query(ctx: CallContext, params: Params) -> MethodResult:
    if not get_str(params, "callback_query_id"):
        raise bad_request("query_id is empty")
    return MethodResult(True)


async def log_out(ctx: CallContext, params: Params) -> MethodResult:
    return MethodResult(True)


METHODS: dict[str, tuple[str, Handler]] = {
    name.lower(): (name, handler)
    for name, handler in (
        ("getMe", get_me),
        ("setWebhook", set_webhook),
        ("deleteWebhook", delete_webhook),
        ("getWebhookInfo", get_webhook_info),
        ("getUpdates", get_updates),
        ("sendMessage", send_message),
        ("sendChatAction", send_chat_action),
        ("answerCallbackQuery", answer_callback_query),
        ("logOut", log_out),
        ("close", log_out),
    )
}


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
            raise NOT_FOUND
        outcome = await entry[1](ctx, params)
    except ApiError as error:
        ctx.state.record_call(ctx.bot, method, stored_params(params), error.code, ctx.via, error.description)
        return error.code, error.body()
    ctx.state.record_call(ctx.bot, entry[0], stored_params(params), 200, ctx.via, outcome.description)
    return 200, outcome.body()
