"""What setWebhook should say, its fingerprint, and how the live webhook differs from it. Pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from .model import TelegramBotSpec
from .telegram import SetWebhookParams, WebhookInfo


@dataclass(frozen=True)
class Registration:
    """What the operator last registered (kept in memory and in ``status.registration``)."""

    fingerprint: str
    registered_at: datetime
    url: str


def desired_params(spec: TelegramBotSpec, secret_token: str, certificate: bytes | None) -> SetWebhookParams:
    hook = spec.webhook
    return SetWebhookParams(
        url=hook.url,
        secret_token=secret_token,
        max_connections=hook.max_connections,
        allowed_updates=tuple(hook.allowed_updates) if hook.allowed_updates is not None else None,
        drop_pending_updates=hook.drop_pending_updates,
        ip_address=hook.ip_address,
        certificate=certificate if hook.certificate.mode != "None" else None,
    )


def fingerprint(params: SetWebhookParams, identity: str) -> str:
    """A sha256 over everything a registration depends on (drop_pending_updates excepted: it is an
    instruction for the moment of registering, not a property of the webhook).

    ``identity`` is the Bot API server and the bot token. The secrets go in hashed, and the result
    is safe to show in status.
    """
    material = {
        "url": params.url,
        "max_connections": params.max_connections,
        "allowed_updates": sorted(params.allowed_updates) if params.allowed_updates is not None else None,
        "ip_address": params.ip_address,
        "certificate": _sha(params.certificate) if params.certificate is not None else None,
        "secret_token": _sha(params.secret_token.encode()),
        "identity": _sha(identity.encode()),
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def drift(params: SetWebhookParams, live: WebhookInfo) -> list[str]:
    """How the live webhook differs from ``params`` (empty when it matches what we can see).

    The live secret token is never revealed by the Bot API, so it is not compared here.
    """
    found: list[str] = []
    if live.url != params.url:
        found.append("url is " + (repr(live.url) if live.url else "not set"))
        return found
    if live.max_connections is not None and live.max_connections != params.max_connections:
        found.append(f"max_connections is {live.max_connections}, not {params.max_connections}")
    if params.allowed_updates is not None:
        live_set = set(live.allowed_updates or ())
        if live_set != set(params.allowed_updates):
            found.append(f"allowed_updates is {sorted(live_set)}, not {sorted(params.allowed_updates)}")
    if params.ip_address and live.ip_address and live.ip_address != params.ip_address:
        found.append(f"ip_address is {live.ip_address}, not {params.ip_address}")
    wants_certificate = params.certificate is not None
    if live.has_custom_certificate != wants_certificate:
        found.append(f"has_custom_certificate is {str(live.has_custom_certificate).lower()}")
    return found


def rejected_with_401_since(live: WebhookInfo, since: datetime) -> bool:
    """Whether Telegram's last delivery error is a 401 from the webhook, dated after ``since``."""
    if not live.last_error_message or live.last_error_date is None:
        return False
    return "401" in live.last_error_message and live.last_error_date > since.timestamp()
