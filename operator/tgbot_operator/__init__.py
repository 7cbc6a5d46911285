"""The TelegramBot operator: registers, watches and rotates Telegram bot webhooks (kopf-based).

Layers: ``settings``/``cli`` (configuration) -> ``handlers`` (kopf) -> ``worker`` (one loop per bot)
-> ``reconcile``/``status``/``registration``/``webhook_secret`` (pure) and ``botapi``/``kube`` (I/O).
"""

from .botapi import (
    BadRequest,
    BotApiClient,
    BotApiError,
    BotUser,
    MalformedAnswer,
    NetworkError,
    NotFound,
    RetryAfter,
    ServerError,
    ServerNotAllowed,
    SetWebhookParams,
    Unauthorized,
    WebhookInfo,
)
from .conditions import Condition, merge_conditions
from .model import TelegramBotSpec, parse_duration
from .reconcile import Action, Memory, Observation, Problem, Timing, Wait, decide
from .redaction import SecretRegistry, redact
from .registration import Registration, drift, fingerprint
from .servers import AllowedServers
from .settings import OperatorSettings
from .webhook_secret import (
    RotationPhase,
    WebhookSecretState,
    certificate_renewal_reason,
    generate_secret_token,
    generate_self_signed,
    inspect_certificate,
)

__all__ = [
    "Action",
    "AllowedServers",
    "BadRequest",
    "BotApiClient",
    "BotApiError",
    "BotUser",
    "Condition",
    "MalformedAnswer",
    "Memory",
    "NetworkError",
    "NotFound",
    "Observation",
    "OperatorSettings",
    "Problem",
    "Registration",
    "RetryAfter",
    "RotationPhase",
    "SecretRegistry",
    "ServerError",
    "ServerNotAllowed",
    "SetWebhookParams",
    "TelegramBotSpec",
    "Timing",
    "Unauthorized",
    "Wait",
    "WebhookInfo",
    "WebhookSecretState",
    "certificate_renewal_reason",
    "decide",
    "drift",
    "fingerprint",
    "generate_secret_token",
    "generate_self_signed",
    "inspect_certificate",
    "merge_conditions",
    "parse_duration",
    "redact",
]
