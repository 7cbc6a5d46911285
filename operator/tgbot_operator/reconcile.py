"""Desired vs live -> the one action to take next. Pure: no I/O, no clocks, no randomness.

The worker (``worker.py``) observes (``observe.py``: Kubernetes reads; ``observation.Memory``: what
it remembers of Telegram), asks :func:`decide` for one action (``actions.py``), executes it
(``execute.py``), records the outcome (``record.py``), and asks again, until the answer is
:class:`Wait`.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from .actions import (
    TELEGRAM_STEPS,
    Action,
    AddIdentityKey,
    CreateWebhookSecret,
    DropCertificate,
    DropPreviousCertificate,
    GetMe,
    GetWebhookInfo,
    Purpose,
    RenewCertificate,
    RetirePreviousToken,
    SetWebhook,
    StageCertificate,
    StartRotation,
    SwapCertificate,
    Trigger,
    Wait,
)
from .model import TelegramBotSpec
from .observation import Memory, Observation, Problem, Timing
from .registration import desired_params, drift, fingerprint, rejected_with_401_since
from .telegram import SetWebhookParams
from .webhook_secret import (
    RotationPhase,
    WebhookSecretState,
    bundle,
    certificate_renewal_reason,
    certificate_usable,
    identity_mac,
)

# --- the decision -----------------------------------------------------------------------------


def desired(obs: Observation) -> tuple[SetWebhookParams, str] | None:
    """The setWebhook parameters and their fingerprint, when everything needed is at hand."""
    if not isinstance(obs.spec, TelegramBotSpec) or not isinstance(obs.token, str):
        return None
    secret = obs.webhook_secret
    if not isinstance(secret, WebhookSecretState) or not secret.registered_token:
        return None
    mode = obs.spec.webhook.certificate.mode
    certificate: bytes | None = None
    if mode == "SelfSigned":
        if not secret.tls_crt:
            return None
        certificate = self_signed_upload(secret, obs.now)
    elif mode == "Secret":
        if not isinstance(obs.custom_certificate, bytes):
            return None
        certificate = obs.custom_certificate
    params = desired_params(obs.spec, secret.registered_token, certificate)
    assert obs.identity is not None
    return params, fingerprint(params, obs.identity)


def self_signed_upload(secret: WebhookSecretState, now: datetime) -> bytes | None:
    """What Telegram must trust: during a renewal both certificates (the new one first), so that
    every sidecar is trusted whichever of the two its mounted Secret shows."""
    if secret.next_tls_crt and secret.tls_crt:
        return bundle(secret.next_tls_crt, secret.tls_crt)
    until = secret.previous_certificate_until
    if secret.previous_tls_crt and secret.tls_crt and until is not None and now < until:
        return bundle(secret.tls_crt, secret.previous_tls_crt)
    return secret.tls_crt


def identity_hash(obs: Observation) -> str | None:
    """``status.bot.identityHash`` for this observation (None until the Secret holds its key)."""
    secret = obs.webhook_secret
    identity = obs.identity
    if not isinstance(secret, WebhookSecretState) or not secret.identity_key or identity is None:
        return None
    return identity_mac(secret.identity_key, identity)


def adopt_status_identity(obs: Observation, mem: Memory) -> None:
    """Trust the bot identity a previous worker left in status when its identityHash matches the
    token read now: a restart then needs no getMe. Otherwise forget it (getMe runs)."""
    if mem.status_identity is None or mem.me is None or mem.me_token_hash is not None:
        return
    expected = identity_hash(obs)
    if expected is None:
        return  # no token or no Secret yet: decide() waits or creates it; look again next pass
    if hmac.compare_digest(expected, mem.status_identity):
        mem.me_token_hash = obs.token_hash
        if mem.live_from_status:
            mem.live_token_hash = obs.token_hash  # status.webhook was written beside that identity
    else:
        mem.me = None
        mem.live, mem.live_at, mem.live_from_status, mem.next_live_check = None, None, False, None
    mem.status_identity = None


def rotation_due(obs: Observation, secret: WebhookSecretState) -> StartRotation | datetime | None:
    """A rotation to start now, or when the next scheduled one is due (None: not scheduled)."""
    if obs.rotate_request and obs.rotate_request != secret.rotate_handled:
        return StartRotation(trigger=Trigger.ANNOTATION, request=obs.rotate_request)
    spec = obs.spec
    if not isinstance(spec, TelegramBotSpec) or spec.secret_token.rotation_interval is None:
        return None
    if secret.rotated_at is None:
        return StartRotation(trigger=Trigger.SCHEDULE)
    due = secret.rotated_at + spec.secret_token.rotation_interval
    return StartRotation(trigger=Trigger.SCHEDULE) if due <= obs.now else due


def decide(obs: Observation, mem: Memory, timing: Timing) -> Action:
    """The next action; a Bot API call waits for Telegram's flood control (``retry_after``)."""
    action = _decide(obs, mem, timing)
    if isinstance(action, TELEGRAM_STEPS) and mem.flood_until is not None and obs.now < mem.flood_until:
        return Wait("Telegram asked to wait (flood control)", mem.flood_until)
    return action


def _decide(obs: Observation, mem: Memory, timing: Timing) -> Action:
    now = obs.now
    spec = obs.spec
    if isinstance(spec, Problem):
        return Wait(f"invalid spec: {spec.message}")
    if isinstance(obs.token, Problem):
        return Wait(obs.token.message)  # the token check notices when it appears
    token_hash = obs.token_hash

    deadlines: list[datetime] = []
    auth = mem.auth_failure
    if auth is not None and auth.token_hash == token_hash and now < auth.at + timing.unauthorized_retry:
        return Wait(f"the bot token was rejected ({auth.message})", auth.at + timing.unauthorized_retry)
    if mem.not_before is not None and now < mem.not_before:
        return Wait("backing off", mem.not_before)

    if mem.me is None or mem.me_token_hash != token_hash:
        return GetMe()

    secret = obs.webhook_secret
    if isinstance(secret, Problem):
        return Wait(secret.message)
    if secret is None:
        return CreateWebhookSecret("it does not exist")
    if not secret.secret_token:
        return CreateWebhookSecret("it has no secret token")
    if not secret.identity_key:
        return AddIdentityKey()
    mode = spec.webhook.certificate.mode
    renewing = bool(secret.next_tls_crt or secret.previous_tls_crt)
    if mode == "SelfSigned":
        host = spec.webhook.host
        if renewing and not certificate_usable(secret.tls_crt, secret.tls_key, host, now):
            return RenewCertificate("the certificate in use no longer works")  # nothing to overlap with
        if not renewing:
            why = certificate_renewal_reason(
                secret.tls_crt, secret.tls_key, host, now, timing.certificate_renew_before
            )
            if why is not None:
                # The current one still works: renew beside it. Otherwise replace it at once.
                if certificate_usable(secret.tls_crt, secret.tls_key, host, now):
                    return StageCertificate(why)
                return RenewCertificate(why)
    elif secret.tls_crt or secret.tls_key or renewing:
        return DropCertificate()
    if isinstance(obs.custom_certificate, Problem):
        return Wait(obs.custom_certificate.message)

    # Rotation: retire the previous token, or start a rotation.
    if secret.phase is RotationPhase.RETIRING:
        retire_at = (secret.phase_since or now) + timing.retire_grace
        if retire_at <= now or not secret.previous_secret_token:
            return RetirePreviousToken()
        deadlines.append(retire_at)
    elif secret.phase is RotationPhase.IDLE:
        due = rotation_due(obs, secret)
        if isinstance(due, StartRotation):
            return due
        if due is not None:
            deadlines.append(due)

    wanted = desired(obs)
    if wanted is None:
        return Wait("waiting for the webhook secret material")
    params, print_ = wanted

    if secret.phase is RotationPhase.PROPAGATING:
        switch_at = (secret.phase_since or now) + timing.propagation_grace
        if switch_at <= now or not secret.previous_secret_token:
            new_params = desired_params(spec, secret.secret_token, params.certificate)
            return SetWebhook(
                new_params,
                fingerprint(new_params, obs.identity or ""),
                "the rotated secret token has had time to reach every sidecar",
                purpose=Purpose.ROTATION,
                completes_rotation=True,
            )
        deadlines.append(switch_at)

    # Certificate renewal: swap once Telegram trusts both, retire the old one after the grace.
    registered = mem.registration is not None and mem.registration.fingerprint == print_
    if mode == "SelfSigned" and secret.next_tls_crt and registered:
        return SwapCertificate()
    if mode == "SelfSigned" and secret.previous_tls_crt and not secret.next_tls_crt:
        until = secret.previous_certificate_until
        if until is not None and now < until:
            deadlines.append(until)
        elif registered:
            return DropPreviousCertificate()

    live = mem.live
    if live is None:
        return GetWebhookInfo("first look")
    if mem.live_token_hash != token_hash:
        changed = not mem.live_from_status
        return GetWebhookInfo("the bot token or the Bot API server changed" if changed else "first look")
    if mem.next_live_check is None:
        return GetWebhookInfo("a look at the registration")
    if mem.next_live_check <= now:
        return GetWebhookInfo("periodic check", periodic=True)

    registration = mem.registration
    if mem.live_from_status and not _in_sync(params, print_, mem, now, timing):
        # The last operator's record says something is to be done: look before acting on it.
        return GetWebhookInfo("a fresh look before acting on the recorded status")
    if registration is None or registration.fingerprint != print_:
        if registration is None:
            reason, purpose = "not registered by this operator yet", Purpose.REGISTER
        elif registration.url != params.url:
            reason, purpose = f"the URL changed to {params.url}", Purpose.UPDATE
        elif mode == "SelfSigned" and secret.next_tls_crt:
            reason, purpose = (
                "certificate renewal: the new certificate is trusted beside the current one",
                Purpose.UPDATE,
            )
        elif mode == "SelfSigned" and secret.previous_tls_crt:
            reason, purpose = (
                "certificate renewal: every sidecar serves the new certificate now",
                Purpose.UPDATE,
            )
        else:
            reason, purpose = "the parameters, certificate, secret token or bot token changed", Purpose.UPDATE
        return SetWebhook(params, print_, reason, purpose=purpose)
    differences = drift(params, live)
    if differences:
        return SetWebhook(params, print_, "drift: " + "; ".join(differences), purpose=Purpose.DRIFT)
    if rejected_with_401_since(live, registration.registered_at) and (
        mem.last_401_repair_at is None or now >= mem.last_401_repair_at + timing.repair_401_cooldown
    ):
        return SetWebhook(
            params,
            print_,
            "the webhook answers 401: the secret token was replaced elsewhere",
            purpose=Purpose.REPAIR_401,
        )

    if mem.next_live_check is not None:
        deadlines.append(mem.next_live_check)
    return Wait("in sync", min(deadlines) if deadlines else None)


def _in_sync(params: SetWebhookParams, print_: str, mem: Memory, now: datetime, timing: Timing) -> bool:
    """Registered as the spec asks, and the live view shows no drift and no 401 to repair."""
    registration, live = mem.registration, mem.live
    if registration is None or registration.fingerprint != print_ or live is None:
        return False
    if drift(params, live):
        return False
    return not (
        rejected_with_401_since(live, registration.registered_at)
        and (mem.last_401_repair_at is None or now >= mem.last_401_repair_at + timing.repair_401_cooldown)
    )
