"""JSON views of state for the control API (with secrets redacted unless asked)."""

from __future__ import annotations

from typing import Any

from .methods import webhook_info
from .redact import REDACTED, redact_token
from .state import Bot, CallRecord, DeliveryAttempt

SECRET_PARAMS = frozenset({"secret_token"})


def bot_view(bot: Bot) -> dict[str, Any]:
    return {
        "id": bot.id,
        "username": bot.username,
        "first_name": bot.first_name,
        "token_redacted": redact_token(bot.token),
        "has_webhook": bot.webhook is not None,
        "pending_update_count": bot.pending_count(),
    }


def call_view(call: CallRecord, reveal_secrets: bool) -> dict[str, Any]:
    params = dict(call.params)
    if not reveal_secrets:
        for key in SECRET_PARAMS & params.keys():
            params[key] = REDACTED
    return {
        "method": call.method,
        "params": params,
        "at": call.at,
        "status": call.status,
        "via": call.via,
        "description": call.description,
    }


def webhook_view(bot: Bot, reveal_secrets: bool) -> dict[str, Any]:
    view = webhook_info(bot)
    webhook = bot.webhook
    secret = webhook.secret_token if webhook else None
    view["secret_token"] = secret if reveal_secrets or secret is None else REDACTED
    view["certificate_sha256"] = webhook.certificate.sha256 if webhook and webhook.certificate else None
    view["drop_pending_updates_applied"] = bot.drop_pending_updates_applied
    view["allowed_updates_effective"] = bot.allowed_updates
    view["set_at"] = webhook.set_at if webhook else None
    return view


def delivery_view(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "update_id": attempt.update_id,
        "attempt": attempt.attempt,
        "at": attempt.at,
        "url": attempt.url,
        "status": attempt.status,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }
