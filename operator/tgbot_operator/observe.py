"""Observe: the Kubernetes reads of one pass (spec, token Secret, certificate Secret, the
generated Secret) -> an :class:`~observation.Observation`. The only reads the worker makes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from . import names
from .deps import Deps
from .kube import SecretView
from .model import TelegramBotSpec
from .observation import Observation, Problem
from .webhook_secret import WebhookSecretState, inspect_certificate, read_state


@dataclass(frozen=True)
class BotRef:
    """Which TelegramBot a worker handles, and the name of its generated Secret."""

    name: str
    namespace: str
    uid: str

    @property
    def secret_name(self) -> str:
        return names.webhook_secret_name(self.name)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> BotRef:
        meta = body.get("metadata") or {}
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def spec_problem(exc: ValidationError) -> Problem:
    details = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
    )
    return Problem("InvalidSpec", details[:500])


#: A bot token as @BotFather issues it: the bot's id, a colon, then the secret half in Telegram's
#: alphabet (35 characters today; a little slack either way for self-hosted servers and emulators).
BOT_TOKEN_RE = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{30,64}")

#: Only these Secrets are read as token Secrets: a service-account token, a registry password or a
#: TLS key must never become a "bot token" that is sent to a Bot API server.
TOKEN_SECRET_TYPES = frozenset({"Opaque"})


def token_from_secret(secret: SecretView | None, name: str, key: str, namespace: str) -> str | Problem:
    if secret is None:
        return Problem("SecretNotFound", f'Secret "{name}" not found in namespace "{namespace}"')
    if secret.type not in TOKEN_SECRET_TYPES:
        return Problem(
            "SecretTypeNotAllowed",
            f'Secret "{name}" is of type "{secret.type[:100]}": only Opaque Secrets are read as '
            "token Secrets (kubectl create secret generic)",
        )
    if key not in secret.data:
        return Problem("SecretKeyMissing", f'Secret "{name}" has no key "{key}"')
    token = secret.data[key].decode("utf-8", "replace").strip()
    if not token:
        return Problem("SecretKeyEmpty", f'Secret "{name}" key "{key}" is empty')
    if not BOT_TOKEN_RE.fullmatch(token):
        # The value is never shown, not even its length: it may be some other secret.
        return Problem(
            "TokenMalformed",
            f'Secret "{name}" key "{key}" does not hold a bot token as @BotFather issues them '
            "(digits, a colon, then 30-64 of A-Z a-z 0-9 _ -): nothing was sent",
        )
    return token


def certificate_from_secret(secret: SecretView | None, name: str) -> bytes | Problem:
    if secret is None:
        return Problem("CertificateSecretNotFound", f'certificate Secret "{name}" not found')
    pem = secret.data.get(names.TLS_CERT_KEY)
    if not pem:
        return Problem(
            "CertificateKeyMissing", f'certificate Secret "{name}" has no key "{names.TLS_CERT_KEY}"'
        )
    try:
        inspect_certificate(pem)
    except ValueError:
        return Problem(
            "CertificateInvalid", f'certificate Secret "{name}" key "{names.TLS_CERT_KEY}" is no PEM'
        )
    return pem


async def observe(deps: Deps, bot: BotRef, body: Mapping[str, Any]) -> tuple[Observation, SecretView | None]:
    """This pass's observation, and the generated Secret as read (the base of its next write)."""
    now = deps.clock()
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    spec: TelegramBotSpec | Problem
    try:
        spec = TelegramBotSpec.from_body(body.get("spec") or {})
    except ValidationError as exc:
        spec = spec_problem(exc)
    server = deps.settings.default_bot_api_server
    token: str | Problem = Problem("InvalidSpec", "the spec is invalid")
    custom_certificate: bytes | Problem | None = None
    if isinstance(spec, TelegramBotSpec):
        server = spec.bot_api_server or server
        ref = spec.token_secret_ref
        problem = deps.server_problem(server)
        if problem is not None:
            token = problem
        else:
            token_secret = await deps.kube.read_secret(bot.namespace, ref.name)
            token = token_from_secret(token_secret, ref.name, ref.key, bot.namespace)
        certificate = spec.webhook.certificate
        if certificate.mode == "Secret" and certificate.secret_ref is not None:
            cert_secret = await deps.kube.read_secret(bot.namespace, certificate.secret_ref.name)
            custom_certificate = certificate_from_secret(cert_secret, certificate.secret_ref.name)
    webhook_secret: WebhookSecretState | Problem | None = None
    view = await deps.kube.read_secret(bot.namespace, bot.secret_name)
    if view is not None:
        if view.controlled_by(bot.uid):
            webhook_secret = read_state(view.data, view.annotations, view.resource_version)
        else:
            webhook_secret = Problem(
                "SecretConflict",
                f'Secret "{bot.secret_name}" exists and is not controlled by this TelegramBot; '
                "delete or rename it",
            )
    deps.secrets.set(
        bot.uid,
        token if isinstance(token, str) else None,
        *(
            (webhook_secret.secret_token, webhook_secret.previous_secret_token)
            if isinstance(webhook_secret, WebhookSecretState)
            else ()
        ),
    )
    observation = Observation(
        now=now,
        generation=meta.get("generation"),
        spec=spec,
        server=server,
        token=token,
        webhook_secret=webhook_secret,
        custom_certificate=custom_certificate,
        rotate_request=annotations.get(names.ROTATE_ANNOTATION) or None,
    )
    return observation, view
