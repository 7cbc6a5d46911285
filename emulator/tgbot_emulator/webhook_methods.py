"""getMe, the webhook methods and getUpdates."""

from __future__ import annotations

from typing import Any

from . import clock
from .context import CallContext, MethodResult
from .errors import WEBHOOK_CONFLICT, too_many_requests
from .params import Params, get_int
from .state import Bot
from .validation import WebhookRequest, parse_allowed_updates, parse_set_webhook

SETWEBHOOK_INTERVAL_SECONDS = 1.0


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
        and clock.now() - last < SETWEBHOOK_INTERVAL_SECONDS
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
    ctx.state.notify(ctx.bot)


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
    deadline = clock.now() + timeout
    while True:
        state.drop_filtered(bot)
        ready = [r for r in bot.pending() if r.update_id >= offset]
        remaining = deadline - clock.now()
        if ready or remaining <= 0 or bot.webhook is not None or state.bots.get(bot.id) is not bot:
            return MethodResult([r.payload for r in ready[:limit]])
        await state.changed.wait(remaining)


async def log_out(ctx: CallContext, params: Params) -> MethodResult:
    return MethodResult(True)
