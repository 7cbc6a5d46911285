"""In-memory state of the emulated Telegram: bots, webhooks, updates and history.

Plain data and bookkeeping only: no HTTP here. Every mutation fires
:attr:`EmulatorState.changed` so delivery workers and waiters re-check.
The records live in :mod:`records`, a bot in :mod:`bots`; both are re-exported here.
"""

from __future__ import annotations

import time
from typing import Any

from . import clock
from .bots import HISTORY_LIMIT, Bot, bot_id_of
from .faults import FaultQueue
from .messages import ChatMessage
from .pulse import Pulse
from .records import (
    CallbackQueryRecord,
    CallRecord,
    Certificate,
    DeliveryAttempt,
    UpdateRecord,
    UpdateStateName,
    Via,
    Webhook,
)
from .seen import remember_update
from .updates import (
    DEFAULT_USER_ID,
    command_entities,
    is_allowed,
    make_chat,
    make_message,
    make_user,
    ordering_key,
    update_type,
)

__all__ = [
    "HISTORY_LIMIT",
    "Bot",
    "BotConflictError",
    "CallRecord",
    "CallbackQueryRecord",
    "Certificate",
    "DeliveryAttempt",
    "EmulatorState",
    "UpdateRecord",
    "UpdateStateName",
    "Via",
    "Webhook",
    "bot_id_of",
]


class BotConflictError(Exception):
    """A bot id or token is already in use by another bot."""


class EmulatorState:
    def __init__(self) -> None:
        self.bots: dict[int, Bot] = {}
        self.faults = FaultQueue()
        self.changed = Pulse()
        #: Bots added, replaced or reset: the delivery supervisor's wake-up.
        self.roster = Pulse()

    def notify(self, bot: Bot | None = None) -> None:
        """Something changed: wake the state's waiters and ``bot``'s (None: every bot's)."""
        self.changed.fire()
        for each in (bot,) if bot is not None else tuple(self.bots.values()):
            each.changed.fire()

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
        self.notify(bot)
        self.roster.fire()
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
        self.notify(bot)
        return bot

    def reset(self) -> None:
        self.notify()  # every bot's worker wakes after this call, to bots already gone
        self.bots.clear()
        self.faults.clear()
        self.roster.fire()

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
        remember_update(bot, kind, body.get(kind), record.update_id)
        self.notify(bot)
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
        # Telegram marks commands in what users type; bots' command filters rely on it.
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
        return self.inject_update(bot, {"message": message})

    def mark_delivered(self, bot: Bot, record: UpdateRecord, via: str) -> None:
        if bot.settle(record, "delivered"):
            record.delivered_via = via
            self.notify(bot)

    def drop(self, bot: Bot, record: UpdateRecord, reason: str) -> None:
        if bot.settle(record, "dropped"):
            record.dropped_reason = reason
            self.notify(bot)

    def drop_pending(self, bot: Bot) -> int:
        dropped = 0
        for record in bot.pending():
            if bot.settle(record, "dropped"):
                record.dropped_reason = "drop_pending_updates"
                dropped += 1
        self.notify(bot)
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
        bot.last_webhook_change_at = clock.now()
        # A new webhook starts with a clean error record, like a new delivery actor.
        bot.last_error_date = None
        bot.last_error_message = None
        self.notify(bot)
        return bot.webhook

    def delete_webhook(self, bot: Bot) -> None:
        bot.webhook_generation += 1
        bot.webhook = None
        bot.last_error_date = None
        bot.last_error_message = None
        self.notify(bot)

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
        self.notify(bot)

    def record_attempt(self, bot: Bot, attempt: DeliveryAttempt) -> None:
        bot.deliveries.append(attempt)
        self.notify(bot)

    def record_sent(
        self, bot: Bot, message: dict[str, Any], via: Via, reply_to_update_id: int | None
    ) -> ChatMessage:
        entry = bot.messages.add(ChatMessage(message, True, via, reply_to_update_id))
        self.notify(bot)
        return entry

    def record_edit(self, entry: ChatMessage, changes: dict[str, Any]) -> None:
        """Apply an edit in place: the transcript shows the message as it is now."""
        for key, value in changes.items():
            if value is None:
                entry.message.pop(key, None)
            else:
                entry.message[key] = value
        entry.message["edit_date"] = int(time.time())
        entry.edited = True
        self.changed.fire()

    def record_delete(self, entry: ChatMessage) -> None:
        entry.deleted = True
        self.changed.fire()
