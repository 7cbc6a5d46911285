"""In-memory state of the emulated Telegram: bots, webhooks, updates and history.

Plain data and bookkeeping only: no HTTP here. Every mutation fires
:attr:`EmulatorState.changed` so delivery workers and waiters re-check.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from .faults import FaultQueue
from .pulse import Pulse
from .updates import (
    DEFAULT_USER_ID,
    is_allowed,
    make_chat,
    make_message,
    make_user,
    ordering_key,
    update_type,
)

UpdateStateName = Literal["pending", "delivered", "dropped"]
Via = Literal["api", "webhook_reply"]

# History lists are bounded so a long-running demo can't grow without limit.
HISTORY_LIMIT = 10_000


class BotConflictError(Exception):
    """A bot id or token is already in use by another bot."""


@dataclass(frozen=True)
class Certificate:
    filename: str
    pem: bytes
    sha256: str


@dataclass(frozen=True)
class Webhook:
    """Immutable: a change replaces the object, so workers can tell old from new."""

    url: str
    secret_token: str | None
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
    # Retry bookkeeping for webhook delivery (monotonic clock).
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
class SentMessage:
    message: dict[str, Any]
    via: Via
    reply_to_update_id: int | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "chat_id": self.message["chat"]["id"],
            "text": self.message.get("text"),
            "message_id": self.message["message_id"],
            "date": self.message["date"],
            "via": self.via,
            "message": self.message,
        }
        if self.reply_to_update_id is not None:
            out["reply_to_update_id"] = self.reply_to_update_id
        return out


@dataclass
class Bot:
    id: int
    token: str
    username: str
    first_name: str
    revoked_tokens: set[str] = field(default_factory=set)
    webhook: Webhook | None = None
    # None = Telegram's default set; a list only when the bot asked for one.
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    drop_pending_updates_applied: bool = False
    # Monotonic time of the last setWebhook that set or changed the webhook (rate limit).
    last_webhook_change_at: float | None = None
    webhook_generation: int = 0
    next_update_id: int = 1
    updates: dict[int, UpdateRecord] = field(default_factory=dict)
    calls: deque[CallRecord] = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))
    deliveries: deque[DeliveryAttempt] = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))
    sent: deque[SentMessage] = field(default_factory=lambda: deque(maxlen=HISTORY_LIMIT))
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_message_id: dict[int, int] = field(default_factory=dict)
    # Pending updates indexed per ordering key (each in update_id order), so delivery
    # finds a chat's next update without scanning the whole history.
    pending_by_key: dict[str, dict[int, UpdateRecord]] = field(default_factory=dict)
    pending_total: int = 0

    @property
    def user(self) -> dict[str, Any]:
        """The bot as a Telegram User object."""
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def pending(self) -> list[UpdateRecord]:
        records = [r for by_id in self.pending_by_key.values() for r in by_id.values()]
        return sorted(records, key=lambda r: r.update_id)

    def pending_count(self) -> int:
        return self.pending_total

    def pending_keys(self) -> list[str]:
        return list(self.pending_by_key)

    def head_pending(self, key: str) -> UpdateRecord | None:
        """The oldest pending update of one ordering key."""
        by_id = self.pending_by_key.get(key)
        return next(iter(by_id.values())) if by_id else None

    def track_pending(self, record: UpdateRecord) -> None:
        self.pending_by_key.setdefault(record.key, {})[record.update_id] = record
        self.pending_total += 1

    def settle(self, record: UpdateRecord, state: UpdateStateName) -> bool:
        """Move a pending record to a final state; False if it was not pending."""
        if record.state != "pending":
            return False
        record.state = state
        by_id = self.pending_by_key.get(record.key)
        if by_id is not None and by_id.pop(record.update_id, None) is not None:
            self.pending_total -= 1
            if not by_id:
                del self.pending_by_key[record.key]
        return True

    def next_message_id(self, chat_id: int) -> int:
        value = self.last_message_id.get(chat_id, 0) + 1
        self.last_message_id[chat_id] = value
        return value


def bot_id_of(token: str) -> int:
    head, sep, _ = token.partition(":")
    if not sep or not head.isdigit():
        raise ValueError("a bot token looks like <digits>:<secret>")
    return int(head)


class EmulatorState:
    def __init__(self) -> None:
        self.bots: dict[int, Bot] = {}
        self.faults = FaultQueue()
        self.changed = Pulse()

    # -- bots -----------------------------------------------------------------

    def add_bot(self, token: str, username: str, first_name: str | None = None) -> Bot:
        bot_id = bot_id_of(token)
        existing = self.bots.get(bot_id)
        if existing is not None:
            if existing.token == token:
                return existing
            raise BotConflictError(f"bot {bot_id} already exists with another token")
        bot = Bot(id=bot_id, token=token, username=username.lstrip("@"), first_name=first_name or username)
        self.bots[bot_id] = bot
        self.changed.fire()
        return bot

    def bot_by_token(self, token: str) -> Bot | None:
        try:
            bot = self.bots.get(bot_id_of(token))
        except ValueError:
            return None
        if bot is None or bot.token != token:
            return None
        return bot

    def replace_token(self, bot_id: int, new_token: str) -> Bot:
        """BotFather's "revoke": the old token stops working at once."""
        bot = self.bots[bot_id]
        if bot_id_of(new_token) != bot_id:
            raise BotConflictError("the new token must keep the bot id before ':'")
        if new_token != bot.token:
            bot.revoked_tokens.add(bot.token)
            bot.token = new_token
        self.changed.fire()
        return bot

    def reset(self) -> None:
        self.bots.clear()
        self.faults.clear()
        self.changed.fire()

    # -- updates --------------------------------------------------------------

    def inject_update(self, bot: Bot, update: dict[str, Any]) -> UpdateRecord:
        body = {k: v for k, v in update.items() if k != "update_id"}
        kind = update_type(body)
        payload = {"update_id": bot.next_update_id, **body}
        bot.next_update_id += 1
        record = UpdateRecord(
            update_id=payload["update_id"],
            payload=payload,
            kind=kind,
            key=ordering_key(payload),
            created_at=time.time(),
        )
        bot.updates[record.update_id] = record
        bot.track_pending(record)
        self._remember_chat(bot, body.get(kind))
        self.changed.fire()
        return record

    def user_message(
        self,
        bot: Bot,
        text: str,
        chat_id: int | None = None,
        user_id: int | None = None,
        first_name: str | None = None,
    ) -> UpdateRecord:
        if user_id is None:
            user_id = chat_id if chat_id is not None and chat_id > 0 else DEFAULT_USER_ID
        if chat_id is None:
            chat_id = user_id
        user = make_user(user_id, first_name)
        chat = bot.chats.get(chat_id) if chat_id < 0 else None
        message = make_message(bot.next_message_id(chat_id), chat or make_chat(chat_id, user), user, text)
        return self.inject_update(bot, {"message": message})

    def _remember_chat(self, bot: Bot, body: Any) -> None:
        """Keep chats and message ids seen in updates so replies look consistent."""
        if not isinstance(body, dict):
            return
        chat = body.get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            bot.chats[chat["id"]] = chat
            message_id = body.get("message_id")
            if isinstance(message_id, int):
                bot.last_message_id[chat["id"]] = max(bot.last_message_id.get(chat["id"], 0), message_id)
        user = body.get("from")
        if isinstance(user, dict) and isinstance(user.get("id"), int):
            bot.users[user["id"]] = user

    def mark_delivered(self, bot: Bot, record: UpdateRecord, via: str) -> None:
        if bot.settle(record, "delivered"):
            record.delivered_via = via
            self.changed.fire()

    def drop(self, bot: Bot, record: UpdateRecord, reason: str) -> None:
        if bot.settle(record, "dropped"):
            record.dropped_reason = reason
            self.changed.fire()

    def drop_pending(self, bot: Bot) -> int:
        dropped = 0
        for record in bot.pending():
            if bot.settle(record, "dropped"):
                record.dropped_reason = "drop_pending_updates"
                dropped += 1
        self.changed.fire()
        return dropped

    def drop_filtered(self, bot: Bot) -> None:
        """Updates of types the bot didn't ask for never reach it (as in Telegram)."""
        for record in bot.pending():
            if not is_allowed(record.kind, bot.allowed_updates):
                self.drop(bot, record, "not in allowed_updates")

    # -- webhook --------------------------------------------------------------

    def set_webhook(
        self,
        bot: Bot,
        url: str,
        secret_token: str | None,
        certificate: Certificate | None,
        ip_address: str | None,
        max_connections: int,
    ) -> Webhook:
        bot.webhook_generation += 1
        bot.webhook = Webhook(
            url=url,
            secret_token=secret_token,
            certificate=certificate,
            ip_address=ip_address,
            max_connections=max_connections,
            generation=bot.webhook_generation,
            set_at=time.time(),
        )
        bot.last_webhook_change_at = time.monotonic()
        # A new webhook starts with a clean error record, like a new delivery actor.
        bot.last_error_date = None
        bot.last_error_message = None
        self.changed.fire()
        return bot.webhook

    def delete_webhook(self, bot: Bot) -> None:
        bot.webhook_generation += 1
        bot.webhook = None
        bot.last_error_date = None
        bot.last_error_message = None
        self.changed.fire()

    def webhook_error(self, bot: Bot, message: str) -> None:
        bot.last_error_date = int(time.time())
        bot.last_error_message = message

    # -- history --------------------------------------------------------------

    def record_call(
        self,
        bot: Bot,
        method: str,
        params: dict[str, Any],
        status: int | None,
        via: Via,
        description: str | None = None,
    ) -> None:
        bot.calls.append(CallRecord(method, params, time.time(), status, via, description))
        self.changed.fire()

    def record_attempt(self, bot: Bot, attempt: DeliveryAttempt) -> None:
        bot.deliveries.append(attempt)
        self.changed.fire()

    def record_sent(
        self, bot: Bot, message: dict[str, Any], via: Via, reply_to_update_id: int | None
    ) -> None:
        bot.sent.append(SentMessage(message, via, reply_to_update_id))
        self.changed.fire()
