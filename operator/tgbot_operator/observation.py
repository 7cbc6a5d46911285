"""What a worker knows when it decides: the observation of one pass, and its memory. Pure.

:class:`Observation` is read from Kubernetes at each pass (``observe.py``); :class:`Memory` is
what the worker remembers of Telegram between passes, rebuilt from status after a restart
(:func:`memory_from_status`) and changed only by ``record.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import delivery, profile_plan
from .actions import ActionKind
from .conditions import Condition, parse_time
from .delivery import DeliveryTrack
from .model import TelegramBotSpec
from .profile_plan import ProfileMemory
from .registration import Registration
from .telegram import BotUser, ErrorKind, WebhookInfo
from .webhook_secret import (
    CERTIFICATE_RENEW_BEFORE,
    IDENTITY_MAC_PREFIX,
    WebhookSecretState,
    sha256_hex,
)


@dataclass(frozen=True)
class Problem:
    """Something the operator cannot fix by itself (a missing Secret, a missing key...)."""

    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    """What the worker read from Kubernetes for this pass."""

    now: datetime
    generation: int | None
    spec: TelegramBotSpec | Problem
    server: str
    token: str | Problem = field(repr=False)
    webhook_secret: WebhookSecretState | Problem | None  # None: absent; Problem: not ours
    custom_certificate: bytes | Problem | None  # certificate.mode=Secret only
    rotate_request: str | None  # the tgbot.dev/rotate-secret-token annotation

    @property
    def identity(self) -> str | None:
        """The Bot API server plus the bot token: who we talk to, as whom."""
        return f"{self.server}\n{self.token}" if isinstance(self.token, str) else None

    @property
    def token_hash(self) -> str | None:
        identity = self.identity
        return sha256_hex(identity) if identity is not None else None


class LocalFailure(enum.StrEnum):
    """Failures that are not the Bot API's."""

    KUBERNETES = "KubernetesError"
    INTERNAL = "InternalError"


FailureKind = ErrorKind | LocalFailure


@dataclass(frozen=True)
class Failure:
    """The last failed action (for conditions and backoff)."""

    action: ActionKind
    kind: FailureKind
    message: str
    at: datetime
    token_hash: str | None = None

    @property
    def rejects_token(self) -> bool:
        return isinstance(self.kind, ErrorKind) and self.kind.rejects_token


@dataclass
class Memory:
    """What one worker remembers between passes (lost on restart, rebuilt from status and Telegram)."""

    me: BotUser | None = None
    me_token_hash: str | None = None
    live: WebhookInfo | None = None
    live_at: datetime | None = None
    live_token_hash: str | None = None
    registration: Registration | None = None
    auth_failure: Failure | None = None
    failure: Failure | None = None
    not_before: datetime | None = None
    #: Failures in a row, per action kind: one kind's failures never lengthen another's backoff.
    failures_in_a_row: dict[ActionKind, int] = field(default_factory=dict)
    #: Telegram's flood control (429 retry_after): no Bot API call before, whatever fails meanwhile.
    flood_until: datetime | None = None
    last_401_repair_at: datetime | None = None
    next_live_check: datetime | None = None
    #: ``live`` is what a previous worker's last check saw (``status.webhook``), not a look of ours:
    #: enough to stay in sync until the next check, never a reason to call setWebhook.
    live_from_status: bool = False
    #: ``status.bot.identityHash`` as a previous worker wrote it, until checked against the token.
    status_identity: str | None = None
    #: What the getWebhookInfo checks showed of delivery, and the ``Delivering`` verdict of the last
    #: one (from status after a restart, so that its Event is not repeated).
    delivery: DeliveryTrack | None = None
    delivering: Condition | None = None
    #: spec.profile: what the operator applied (from status) and what it last read (profile_*.py).
    profile: ProfileMemory = field(default_factory=ProfileMemory)


@dataclass(frozen=True)
class Timing:
    check_interval: timedelta
    token_check_interval: timedelta
    propagation_grace: timedelta
    retire_grace: timedelta
    unauthorized_retry: timedelta = timedelta(minutes=10)
    repair_401_cooldown: timedelta = timedelta(minutes=10)
    certificate_renew_before: timedelta = CERTIFICATE_RENEW_BEFORE


def registration_from_status(status: Mapping[str, Any] | None) -> Registration | None:
    raw = (status or {}).get("registration") or {}
    fingerprint = raw.get("fingerprint")
    registered_at = parse_time(raw.get("registeredAt"))
    if not fingerprint or registered_at is None:
        return None
    return Registration(
        fingerprint=str(fingerprint), registered_at=registered_at, url=str(raw.get("url", ""))
    )


def memory_from_status(status: Mapping[str, Any] | None) -> Memory:
    """What a previous worker (or operator process) already established, as its status says.

    The bot's identity comes back with a keyed hash of the token getMe accepted (the key is in the
    operator-owned Secret), so a restart needs no getMe while the token is the same; with it comes
    the last check's ``status.webhook`` (trusted for the same identity only, see
    ``reconcile.adopt_status_identity``), so a restart costs no immediate getWebhookInfo either:
    the next check is placed at a random moment of the interval (``record.place_resumed_checks``).
    """
    memory = Memory(registration=registration_from_status(status))
    bot = (status or {}).get("bot") or {}
    identity = str(bot.get("identityHash") or "")
    # Only the keyed hash: the unkeyed sha256 of older versions is not trusted (nor kept).
    if isinstance(bot.get("id"), int) and identity.startswith(IDENTITY_MAC_PREFIX):
        memory.me = BotUser(id=bot["id"], username=bot.get("username") or None)
        memory.status_identity = identity
        restored = live_from_status((status or {}).get("webhook"))
        if restored is not None:
            memory.live, memory.live_at = restored
            memory.live_from_status = True
    memory.delivering = delivery.condition_from_status((status or {}).get("conditions"))
    memory.profile = profile_plan.memory_from_status((status or {}).get("profile"))
    return memory


def _epoch(value: Any) -> int | None:
    moment = parse_time(value) if isinstance(value, str) else None
    return int(moment.timestamp()) if moment is not None else None


def live_from_status(raw: Any) -> tuple[WebhookInfo, datetime] | None:
    """``status.webhook`` as ``status.live_status`` wrote it, and when it was checked (None: no
    usable record; anything odd in it costs a fresh getWebhookInfo, nothing more)."""
    if not isinstance(raw, Mapping):
        return None
    checked = raw.get("lastCheckTime")
    checked_at = parse_time(checked) if isinstance(checked, str) else None
    url, pending = raw.get("url"), raw.get("pendingUpdateCount")
    allowed = raw.get("allowedUpdates")
    max_connections = raw.get("maxConnections")
    if (
        checked_at is None
        or not isinstance(url, str)
        or not isinstance(pending, int)
        or not isinstance(raw.get("hasCustomCertificate"), bool)
        or (
            allowed is not None
            and not (isinstance(allowed, list) and all(isinstance(a, str) for a in allowed))
        )
        or (max_connections is not None and not isinstance(max_connections, int))
    ):
        return None
    message = raw.get("lastErrorMessage")
    ip_address = raw.get("ipAddress")
    live = WebhookInfo(
        url=url,
        has_custom_certificate=raw["hasCustomCertificate"],
        pending_update_count=pending,
        ip_address=ip_address if isinstance(ip_address, str) and ip_address else None,
        last_error_date=_epoch(raw.get("lastErrorDate")),
        last_error_message=message if isinstance(message, str) and message else None,
        last_synchronization_error_date=_epoch(raw.get("lastSynchronizationErrorDate")),
        max_connections=max_connections,
        allowed_updates=tuple(allowed) if allowed is not None else None,
    )
    return live, checked_at
