"""Plain records of what happened: webhooks, updates, Bot API calls and delivery attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

UpdateStateName = Literal["pending", "delivered", "dropped"]
Via = Literal["api", "webhook_reply"]


@dataclass(frozen=True)
class Certificate:
    filename: str
    pem: bytes
    sha256: str


@dataclass(frozen=True)
class Webhook:
    """Immutable: a change replaces the object, so workers can tell old from new."""

    url: str
    secret_token: str | None = field(repr=False)  # a secret: never in a repr or a log line
    certificate: Certificate | None
    ip_address: str | None
    max_connections: int
    generation: int
    set_at: float


@dataclass
class UpdateRecord:
    update_id: int
    payload: dict[str, Any]
    kind: str
    key: str
    created_at: float
    state: UpdateStateName = "pending"
    attempts: int = 0
    delivered_via: str | None = None
    dropped_reason: str | None = None
    # Retry bookkeeping for webhook delivery (the event loop's clock, clock.now()).
    next_attempt_at: float = 0.0
    backoff: float = 0.0
    backoff_generation: int = -1

    def as_dict(self) -> dict[str, Any]:
        return {
            "update_id": self.update_id,
            "type": self.kind,
            "state": self.state,
            "attempts": self.attempts,
            "delivered_via": self.delivered_via,
            "dropped_reason": self.dropped_reason,
            "created_at": self.created_at,
            "update": self.payload,
        }


@dataclass
class CallRecord:
    method: str
    params: dict[str, Any]
    at: float
    status: int | None
    via: Via
    description: str | None = None


@dataclass
class DeliveryAttempt:
    update_id: int
    attempt: int
    at: float
    url: str
    status: int | None
    error: str | None
    duration_ms: float


@dataclass
class CallbackQueryRecord:
    """A pressed inline button and the bot's answerCallbackQuery, once it came."""

    id: str
    update_id: int
    chat_id: int
    message_id: int
    data: str
    user_id: int
    created_at: float
    answer: dict[str, Any] | None = None
    answered_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "callback_query_id": self.id,
            "update_id": self.update_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "data": self.data,
            "user_id": self.user_id,
            "created_at": self.created_at,
            "answered": self.answer is not None,
            "answer": self.answer,
            "answered_at": self.answered_at,
        }
