"""The generated Secret's next state after a step: the secret-token rotation phases and the
self-signed certificate renewal, as transitions. Pure.

``execute.py`` makes the random material (:class:`Fresh`) and writes what :func:`secret_after`
returns; ``reconcile.decide`` chose the step from the current phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, assert_never

from .actions import (
    AddIdentityKey,
    CreateWebhookSecret,
    DropCertificate,
    DropPreviousCertificate,
    RenewCertificate,
    RetirePreviousToken,
    StageCertificate,
    StartRotation,
    SwapCertificate,
)
from .model import TelegramBotSpec
from .observation import Observation
from .record import Event
from .webhook_secret import RotationPhase, WebhookSecretState

#: A certificate written from scratch ends any renewal in progress.
NO_RENEWAL: dict[str, Any] = {
    "next_tls_crt": None,
    "next_tls_key": None,
    "previous_tls_crt": None,
    "previous_certificate_until": None,
}

# --- the generated Secret -------------------------------------------------------------------

#: The steps that only change the Secret (``CreateWebhookSecret`` writes it from scratch).
ChangeStep = (
    AddIdentityKey
    | RenewCertificate
    | StageCertificate
    | SwapCertificate
    | DropPreviousCertificate
    | DropCertificate
    | StartRotation
    | RetirePreviousToken
)
SecretStep = CreateWebhookSecret | ChangeStep


@dataclass(frozen=True)
class Fresh:
    """Random material the executor made for a step (``needs`` says which)."""

    secret_token: str | None = field(default=None, repr=False)
    identity_key: bytes | None = field(default=None, repr=False)
    certificate: tuple[bytes, bytes] | None = field(default=None, repr=False)


def rotation_completed(state: WebhookSecretState, now: datetime) -> WebhookSecretState:
    """setWebhook took the new token: the previous one is kept for the retire grace."""
    return replace(state, phase=RotationPhase.RETIRING, phase_since=now, rotated_at=now)


def secret_after(
    step: SecretStep,
    current: WebhookSecretState | None,
    fresh: Fresh,
    *,
    obs: Observation,
    secret_name: str,
    grace: float,
) -> tuple[WebhookSecretState, Event | None]:
    """The Secret ``step`` writes, and its Event. ``current`` is None only for a new Secret."""
    match step:
        case CreateWebhookSecret(reason=reason):
            return _created(
                current, fresh, obs, f'Wrote a new secret token to Secret "{secret_name}" ({reason})'
            )
        case _:
            if current is None:
                raise ValueError(f'Secret "{secret_name}" vanished')
            return _changed(step, current, fresh, obs, grace)


def _created(
    current: WebhookSecretState | None, fresh: Fresh, obs: Observation, message: str
) -> tuple[WebhookSecretState, Event]:
    tls_crt, tls_key = (current.tls_crt, current.tls_key) if current else (None, None)
    if fresh.certificate is not None:
        tls_crt, tls_key = fresh.certificate
    state = WebhookSecretState(
        secret_token=fresh.secret_token,
        previous_secret_token=None,
        tls_crt=tls_crt,
        tls_key=tls_key,
        phase=RotationPhase.IDLE,
        phase_since=None,
        rotated_at=obs.now,
        rotate_handled=obs.rotate_request,
        identity_key=(current.identity_key if current else None) or fresh.identity_key,
    )
    return state, ("Normal", "SecretCreated", message)


def _changed(
    step: ChangeStep, current: WebhookSecretState, fresh: Fresh, obs: Observation, grace: float
) -> tuple[WebhookSecretState, Event | None]:
    now = obs.now
    host = obs.spec.webhook.host if isinstance(obs.spec, TelegramBotSpec) else ""
    match step:
        case AddIdentityKey():
            return replace(current, identity_key=fresh.identity_key), None
        case RenewCertificate(reason=reason):
            assert fresh.certificate is not None
            tls_crt, tls_key = fresh.certificate
            state = replace(current, tls_crt=tls_crt, tls_key=tls_key, **NO_RENEWAL)
            return state, (
                "Normal",
                "CertificateIssued",
                f"Issued a self-signed certificate for {host} ({reason})",
            )
        case StageCertificate(reason=reason):
            assert fresh.certificate is not None
            next_crt, next_key = fresh.certificate
            message = (
                f"Issued a new self-signed certificate for {host} ({reason}); Telegram is told to trust it "
                "beside the current one before any sidecar serves it"
            )
            state = replace(current, next_tls_crt=next_crt, next_tls_key=next_key)
            return state, ("Normal", "CertificateRenewalStarted", message)
        case SwapCertificate():
            state = replace(
                current,
                tls_crt=current.next_tls_crt,
                tls_key=current.next_tls_key,
                next_tls_crt=None,
                next_tls_key=None,
                previous_tls_crt=current.tls_crt,
                previous_certificate_until=now + timedelta(seconds=grace),
            )
            message = (
                f"The renewed certificate is in tls.crt now; the previous one stays trusted "
                f"for {grace:g}s, while mounted Secrets update"
            )
            return state, ("Normal", "CertificateRenewed", message)
        case DropPreviousCertificate():
            state = replace(current, previous_tls_crt=None, previous_certificate_until=None)
            return state, (
                "Normal",
                "PreviousCertificateRetired",
                "Telegram trusts the renewed certificate alone",
            )
        case DropCertificate():
            state = replace(current, tls_crt=None, tls_key=None, **NO_RENEWAL)
            message = "Removed the self-signed certificate (mode is not SelfSigned)"
            return state, ("Normal", "CertificateRemoved", message)
        case StartRotation(trigger=trigger, request=request):
            state = replace(
                current,
                secret_token=fresh.secret_token,
                previous_secret_token=current.secret_token,
                phase=RotationPhase.PROPAGATING,
                phase_since=now,
                rotate_handled=request if request is not None else current.rotate_handled,
            )
            message = (
                f"New secret token written ({trigger.value}); it is registered after {grace:g}s, "
                "once mounted Secrets have been updated"
            )
            return state, ("Normal", "SecretTokenRotationStarted", message)
        case RetirePreviousToken():
            state = replace(current, previous_secret_token=None, phase=RotationPhase.IDLE, phase_since=None)
            return state, ("Normal", "PreviousSecretTokenRetired", "The previous secret token was removed")
        case _:
            assert_never(step)
