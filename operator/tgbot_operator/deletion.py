"""What happens when a TelegramBot is deleted: maybe deleteWebhook, never hang forever."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .backoff import exponential
from .conditions import parse_time
from .deps import Deps, EventSink
from .kube import KubeError
from .model import TelegramBotSpec
from .observe import token_from_secret
from .redaction import redact
from .telegram import BotApiError, NotFound, RetryAfter, Unauthorized


@dataclass(frozen=True)
class Done:
    """The finalizer may go."""

    summary: str


@dataclass(frozen=True)
class RetryIn:
    seconds: float
    message: str


def deadline_passed(meta: Mapping[str, Any], now: datetime, timeout: float) -> bool:
    started = parse_time(meta.get("deletionTimestamp"))
    return started is not None and (now - started).total_seconds() >= timeout


async def finalize(
    *,
    deps: Deps,
    body: Mapping[str, Any],
    events: EventSink,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    retry: int,
) -> Done | RetryIn:
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace"))
    try:
        spec = TelegramBotSpec.from_body(body.get("spec") or {})
    except ValidationError:
        events("Warning", "WebhookLeft", "The spec is invalid; the webhook (if any) was left as it is")
        return Done("invalid spec")
    if spec.deletion_policy == "Keep":
        events("Normal", "WebhookKept", "deletionPolicy is Keep: the webhook stays registered")
        return Done("kept")

    server = spec.bot_api_server or deps.settings.default_bot_api_server
    problem = deps.server_problem(server)
    if problem is not None:
        events(
            "Warning", "WebhookLeft", f"Cannot delete the webhook: {problem.message}; it was left as it is"
        )
        return Done(problem.reason)
    ref = spec.token_secret_ref
    try:
        secret = await deps.kube.read_secret(namespace, ref.name)
    except KubeError as exc:
        return _retry_or_give_up(deps, meta, retry, str(exc), events)
    token = token_from_secret(secret, ref.name, ref.key, namespace)
    if not isinstance(token, str):
        events("Warning", "WebhookLeft", f"Cannot delete the webhook: {token.message}; it was left as it is")
        return Done(token.reason)

    owner = f"{meta.get('uid')}/finalize"
    deps.secrets.set(owner, token)
    try:
        return await _delete_webhook(deps, body, spec, server, token, events, logger, retry)
    finally:
        deps.secrets.drop(owner)


async def _delete_webhook(
    deps: Deps,
    body: Mapping[str, Any],
    spec: TelegramBotSpec,
    server: str,
    token: str,
    events: EventSink,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    retry: int,
) -> Done | RetryIn:
    meta = body.get("metadata") or {}
    api = deps.bot_api(server, token)
    ours = {spec.webhook.url}
    registered_url = ((body.get("status") or {}).get("registration") or {}).get("url")
    if registered_url:
        ours.add(str(registered_url))
    try:
        live = await api.get_webhook_info()
        if live.url not in ours:
            shown = live.url or "nothing"
            events("Normal", "WebhookNotOurs", f"The webhook points at {shown}, not at our URL: left alone")
            return Done("not ours")
        await api.delete_webhook(drop_pending_updates=False)
    except (Unauthorized, NotFound) as exc:
        events(
            "Warning",
            "WebhookLeft",
            f"Telegram rejected the bot token ({redact(exc.message, token)}); the webhook was left as it is",
        )
        return Done("unauthorized")
    except RetryAfter as exc:
        return _retry_or_give_up(deps, meta, retry, redact(str(exc), token), events, at_least=exc.seconds)
    except BotApiError as exc:
        return _retry_or_give_up(deps, meta, retry, redact(str(exc), token), events)
    except Exception:
        # A bug must not skip the deletion timeout: kopf would retry forever, and the
        # TelegramBot (and its namespace) would stay Terminating.
        logger.exception("Unexpected error while deleting the webhook")
        return _retry_or_give_up(deps, meta, retry, "unexpected error: see the operator log", events)
    events("Normal", "WebhookDeleted", f"Deleted the webhook {live.url}")
    logger.info("Deleted the webhook %s", live.url)
    return Done("deleted")


def _retry_or_give_up(
    deps: Deps,
    meta: Mapping[str, Any],
    retry: int,
    message: str,
    events: EventSink,
    at_least: float = 0.0,
) -> Done | RetryIn:
    timeout = deps.settings.deletion_timeout
    if deadline_passed(meta, deps.clock(), timeout):
        events(
            "Warning",
            "DeletionTimedOut",
            f"Gave up deleting the webhook after {timeout:g}s ({message}); the webhook may still be "
            "registered: run deleteWebhook by hand if needed",
        )
        return Done("timed out")
    started = parse_time(meta.get("deletionTimestamp"))
    remaining = timeout - (deps.clock() - started).total_seconds() if started is not None else timeout
    delay = max(at_least, min(exponential(retry, base=1.0, cap=60.0), max(1.0, remaining)))
    return RetryIn(delay, message)
