"""Every name the operator shares with the cluster, the sidecar and users, named once."""

# ruff: noqa: S105 - key and condition names, not passwords

from __future__ import annotations

from typing import Final

GROUP: Final = "tgbot.dev"
VERSION: Final = "v1alpha1"
PLURAL: Final = "telegrambots"
KIND: Final = "TelegramBot"
API_VERSION: Final = f"{GROUP}/{VERSION}"

FINALIZER: Final = f"{GROUP}/finalizer"
#: kopf's own annotations (progress, diff base, its marker): a prefix of their own, so that kopf
#: sees ours (``tgbot.dev/rotate-secret-token``) in its diffs. Earlier operators kept them under
#: :data:`LEGACY_PERSISTENCE_PREFIX`; handlers.py migrates objects on resume.
PERSISTENCE_PREFIX: Final = f"kopf.{GROUP}"
LEGACY_PERSISTENCE_PREFIX: Final = GROUP
DIFFBASE_KEY: Final = "last-handled-configuration"
#: The kopf handler that runs on every watch event of a TelegramBot (handlers.py): kopf's
#: "Handler ... succeeded." for it would be a log line per event, so it is not logged (logs.py).
FORGET_MANAGED_FIELDS: Final = "forget-managed-fields"

#: Annotation on a TelegramBot: set any new value to rotate the secret token now.
ROTATE_ANNOTATION: Final = f"{GROUP}/rotate-secret-token"

# The generated Secret ``<name>-webhook`` (mounted by the sidecar as files).
WEBHOOK_SECRET_SUFFIX: Final = "-webhook"
SECRET_TOKEN_KEY: Final = "secret-token"
PREVIOUS_SECRET_TOKEN_KEY: Final = "previous-secret-token"
TLS_CERT_KEY: Final = "tls.crt"
TLS_KEY_KEY: Final = "tls.key"
#: A certificate renewal: the new pair, staged until Telegram trusts it, then the old certificate
#: trusted beside it until every sidecar serves the new one (the sidecar reads tls.crt/tls.key only).
NEXT_TLS_CERT_KEY: Final = "next-tls.crt"
NEXT_TLS_KEY_KEY: Final = "next-tls.key"
PREVIOUS_TLS_CERT_KEY: Final = "previous-tls.crt"
#: The key of ``status.bot.identityHash`` (an HMAC): kept here, never in status.
IDENTITY_KEY_KEY: Final = "identity-key"

# Labels and annotations on the generated Secret.
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "tgbot-operator"
BOT_LABEL: Final = f"{GROUP}/bot"
ROTATION_PHASE_ANNOTATION: Final = f"{GROUP}/rotation-phase"
ROTATION_PHASE_SINCE_ANNOTATION: Final = f"{GROUP}/rotation-phase-since"
ROTATED_AT_ANNOTATION: Final = f"{GROUP}/secret-token-rotated-at"
ROTATE_HANDLED_ANNOTATION: Final = f"{GROUP}/rotate-secret-token-handled"
CERTIFICATE_OVERLAP_UNTIL_ANNOTATION: Final = f"{GROUP}/previous-certificate-trusted-until"

# Condition types.
READY: Final = "Ready"
TOKEN_VALID: Final = "TokenValid"
SECRET_READY: Final = "SecretReady"
WEBHOOK_REGISTERED: Final = "WebhookRegistered"
#: Telegram reaches the webhook (from getWebhookInfo); not part of Ready: it is the bot's health.
DELIVERING: Final = "Delivering"
#: spec.profile is applied as declared (profile.py); not part of Ready either.
PROFILE_APPLIED: Final = "ProfileApplied"
CONDITION_TYPES: Final = (READY, TOKEN_VALID, SECRET_READY, WEBHOOK_REGISTERED, DELIVERING, PROFILE_APPLIED)

DEFAULT_BOT_API_SERVER: Final = "https://api.telegram.org"


def webhook_secret_name(bot_name: str) -> str:
    return f"{bot_name}{WEBHOOK_SECRET_SUFFIX}"
