"""The actions :func:`reconcile.decide` chooses from: one per pass step, as types. Pure.

The executor (``execute.py``) matches on them exhaustively (mypy's ``assert_never``), so a new
action cannot be forgotten there; ``kind`` names each in metrics and in the conditions.
"""

# ruff: noqa: S105 - action names, not passwords

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from .telegram import SetWebhookParams


class ActionKind(enum.StrEnum):
    """An action's name in ``tgbot_operator_reconciles_total{action=...}`` and in failures."""

    OBSERVE = "Observe"  # not an action: the reads before deciding (their failures back off too)
    WAIT = "Wait"
    GET_ME = "GetMe"
    CREATE_WEBHOOK_SECRET = "CreateWebhookSecret"
    ADD_IDENTITY_KEY = "AddIdentityKey"
    RENEW_CERTIFICATE = "RenewCertificate"
    STAGE_CERTIFICATE = "StageCertificate"
    SWAP_CERTIFICATE = "SwapCertificate"
    DROP_PREVIOUS_CERTIFICATE = "DropPreviousCertificate"
    DROP_CERTIFICATE = "DropCertificate"
    START_ROTATION = "StartRotation"
    RETIRE_PREVIOUS_TOKEN = "RetirePreviousToken"
    GET_WEBHOOK_INFO = "GetWebhookInfo"
    SET_WEBHOOK = "SetWebhook"


class Purpose(enum.Enum):
    """Why a setWebhook is due: it picks the Event, and a 401 repair starts its cooldown."""

    REGISTER = "register"
    UPDATE = "update"
    DRIFT = "drift"
    REPAIR_401 = "repair-401"  # Telegram's deliveries get 401s: the secret token was replaced
    ROTATION = "rotation"

    @property
    def shown(self) -> str:
        """As the log line says it (a 401 repair is a drift repair to the reader)."""
        return "drift" if self is Purpose.REPAIR_401 else self.value


class Trigger(enum.Enum):
    """What started a secret-token rotation."""

    ANNOTATION = "annotation"
    SCHEDULE = "schedule"


@dataclass(frozen=True)
class Wait:
    """Nothing to do until ``until`` (or until something changes). ``None``: until a change."""

    kind: ClassVar[ActionKind] = ActionKind.WAIT
    reason: str
    until: datetime | None = None


@dataclass(frozen=True)
class GetMe:
    kind: ClassVar[ActionKind] = ActionKind.GET_ME


@dataclass(frozen=True)
class CreateWebhookSecret:
    """Create ``<name>-webhook`` (or refill it when its secret token is gone)."""

    kind: ClassVar[ActionKind] = ActionKind.CREATE_WEBHOOK_SECRET
    reason: str


@dataclass(frozen=True)
class AddIdentityKey:
    """Add the identityHash key to a Secret written before it existed (keeps everything else)."""

    kind: ClassVar[ActionKind] = ActionKind.ADD_IDENTITY_KEY


@dataclass(frozen=True)
class RenewCertificate:
    kind: ClassVar[ActionKind] = ActionKind.RENEW_CERTIFICATE
    reason: str


@dataclass(frozen=True)
class StageCertificate:
    """Renewal, step 1: a new pair beside the current one (sidecars keep serving the current)."""

    kind: ClassVar[ActionKind] = ActionKind.STAGE_CERTIFICATE
    reason: str


@dataclass(frozen=True)
class SwapCertificate:
    """Renewal, step 2 (Telegram trusts both): the new pair becomes tls.crt/tls.key, the old
    certificate stays trusted for the propagation grace, while mounts update."""

    kind: ClassVar[ActionKind] = ActionKind.SWAP_CERTIFICATE


@dataclass(frozen=True)
class DropPreviousCertificate:
    """Renewal, step 3: Telegram trusts the new certificate alone; forget the old one."""

    kind: ClassVar[ActionKind] = ActionKind.DROP_PREVIOUS_CERTIFICATE


@dataclass(frozen=True)
class DropCertificate:
    kind: ClassVar[ActionKind] = ActionKind.DROP_CERTIFICATE


@dataclass(frozen=True)
class StartRotation:
    kind: ClassVar[ActionKind] = ActionKind.START_ROTATION
    trigger: Trigger
    request: str | None = None


@dataclass(frozen=True)
class RetirePreviousToken:
    kind: ClassVar[ActionKind] = ActionKind.RETIRE_PREVIOUS_TOKEN


@dataclass(frozen=True)
class GetWebhookInfo:
    """``periodic``: the scheduled check (the next one an interval later, jittered); otherwise a
    look after a start, a registration or a token change (the next one at a random moment of the
    interval, so that bots started together do not check together)."""

    kind: ClassVar[ActionKind] = ActionKind.GET_WEBHOOK_INFO
    reason: str
    periodic: bool = False


@dataclass(frozen=True)
class SetWebhook:
    kind: ClassVar[ActionKind] = ActionKind.SET_WEBHOOK
    params: SetWebhookParams = field(repr=False)
    fingerprint: str
    reason: str
    purpose: Purpose
    completes_rotation: bool = False


#: The steps that call the Bot API (flood control holds them back, not the Secret writes).
TELEGRAM_STEPS = (GetMe, GetWebhookInfo, SetWebhook)

#: What the executor does (everything but :class:`Wait`).
Step = (
    GetMe
    | CreateWebhookSecret
    | AddIdentityKey
    | RenewCertificate
    | StageCertificate
    | SwapCertificate
    | DropPreviousCertificate
    | DropCertificate
    | StartRotation
    | RetirePreviousToken
    | GetWebhookInfo
    | SetWebhook
)
Action = Wait | Step
