"""Execute: one step against Telegram or the generated Secret -> a typed outcome (``record.py``).

Errors become outcomes here (a rejected token, flood control, a write conflict...), so that what
they change is decided in one pure place; anything unexpected propagates (the worker backs off).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import assert_never

from .actions import (
    AddIdentityKey,
    CreateWebhookSecret,
    DropCertificate,
    DropPreviousCertificate,
    GetMe,
    GetWebhookInfo,
    RenewCertificate,
    RetirePreviousToken,
    SetWebhook,
    StageCertificate,
    StartRotation,
    Step,
    SwapCertificate,
)
from .deps import Deps
from .kube import Conflict, KubeError, SecretView, secret_body
from .model import TelegramBotSpec
from .observation import LocalFailure, Observation
from .observe import BotRef
from .record import Conflicted, Failed, Identified, Looked, Outcome, Registered, SecretWritten
from .record_secret import Fresh, SecretStep, rotation_completed, secret_after
from .redaction import redact
from .registration import Registration
from .telegram import BotApiError, NotFound, RetryAfter, Unauthorized
from .webhook_secret import WebhookSecretState, render_state


async def execute(deps: Deps, bot: BotRef, step: Step, obs: Observation, base: SecretView | None) -> Outcome:
    """``base``: the generated Secret as this pass read it (None: create it)."""
    token = obs.token if isinstance(obs.token, str) else ""
    try:
        return await _perform(deps, bot, step, obs, base)
    except Conflict as exc:
        return Conflicted(str(exc))
    except KubeError as exc:
        return Failed(LocalFailure.KUBERNETES, str(exc))
    except (Unauthorized, NotFound) as exc:
        return Failed(exc.kind, redact(exc.message, token))
    except RetryAfter as exc:
        return Failed(exc.kind, redact(str(exc), token), retry_after=exc.seconds)
    except BotApiError as exc:
        return Failed(exc.kind, redact(str(exc), token))


async def _perform(deps: Deps, bot: BotRef, step: Step, obs: Observation, base: SecretView | None) -> Outcome:
    assert isinstance(obs.token, str)
    assert isinstance(obs.spec, TelegramBotSpec)
    api = deps.bot_api(obs.server, obs.token)
    match step:
        case GetMe():
            return Identified(await api.get_me())
        case GetWebhookInfo():
            return Looked(await api.get_webhook_info())
        case SetWebhook():
            await api.set_webhook(step.params)
            registered = Registration(step.fingerprint, obs.now, step.params.url)
            if not step.completes_rotation:
                return Registered(registered)
            try:
                await _write_secret(deps, bot, rotation_completed(_current(bot, obs), obs.now), base)
            except Conflict as exc:
                return Registered(registered, then=Conflicted(str(exc)))
            except KubeError as exc:
                return Registered(registered, then=Failed(LocalFailure.KUBERNETES, str(exc)))
            return Registered(registered)
        case (
            CreateWebhookSecret()
            | AddIdentityKey()
            | RenewCertificate()
            | StageCertificate()
            | SwapCertificate()
            | DropPreviousCertificate()
            | DropCertificate()
            | StartRotation()
            | RetirePreviousToken()
        ):
            return await _secret_step(deps, bot, step, obs, base)
        case _:
            assert_never(step)


async def _secret_step(
    deps: Deps, bot: BotRef, step: SecretStep, obs: Observation, base: SecretView | None
) -> SecretWritten:
    current = obs.webhook_secret if isinstance(obs.webhook_secret, WebhookSecretState) else None
    if current is None and not isinstance(step, CreateWebhookSecret):
        current = _current(bot, obs)  # raises: the Secret vanished
    fresh = await _fresh(deps, step, obs, current)
    grace = deps.settings.rotation_propagation_grace
    state, event = secret_after(step, current, fresh, obs=obs, secret_name=bot.secret_name, grace=grace)
    await _write_secret(deps, bot, state, base)
    return SecretWritten(event)


async def _fresh(deps: Deps, step: SecretStep, obs: Observation, current: WebhookSecretState | None) -> Fresh:
    """The random material ``step`` needs (certificates are made off the event loop)."""
    assert isinstance(obs.spec, TelegramBotSpec)
    host = obs.spec.webhook.host
    match step:
        case CreateWebhookSecret():
            certificate = None
            if obs.spec.webhook.certificate.mode == "SelfSigned" and not (current and current.tls_crt):
                certificate = await _new_certificate(deps, host, obs)
            key = None if current and current.identity_key else deps.make_identity_key()
            return Fresh(secret_token=deps.make_secret_token(), identity_key=key, certificate=certificate)
        case AddIdentityKey():
            return Fresh(identity_key=deps.make_identity_key())
        case RenewCertificate() | StageCertificate():
            return Fresh(certificate=await _new_certificate(deps, host, obs))
        case StartRotation():
            return Fresh(secret_token=deps.make_secret_token())
        case SwapCertificate() | DropPreviousCertificate() | DropCertificate() | RetirePreviousToken():
            return Fresh()
        case _:
            assert_never(step)


async def _new_certificate(deps: Deps, host: str, obs: Observation) -> tuple[bytes, bytes]:
    validity = timedelta(seconds=deps.settings.self_signed_validity)
    return await asyncio.to_thread(deps.make_certificate, host, obs.now, validity)


def _current(bot: BotRef, obs: Observation) -> WebhookSecretState:
    if not isinstance(obs.webhook_secret, WebhookSecretState):
        raise KubeError(f'Secret "{bot.secret_name}" vanished')
    return obs.webhook_secret


async def _write_secret(deps: Deps, bot: BotRef, state: WebhookSecretState, base: SecretView | None) -> None:
    data, annotations = render_state(state)
    body = secret_body(
        name=bot.secret_name,
        namespace=bot.namespace,
        bot_name=bot.name,
        bot_uid=bot.uid,
        data=data,
        annotations=annotations,
        base=base,
    )
    if base is None:
        await deps.kube.create_secret(bot.namespace, body)
    else:
        await deps.kube.replace_secret(bot.namespace, body)
