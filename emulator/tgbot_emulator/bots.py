"""One emulated bot: identity, webhook settings, pending updates and everything it did."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from .files import FileStore
from .messages import MessageStore
from .profile import BotProfile
from .pulse import Pulse
from .records import CallbackQueryRecord, CallRecord, DeliveryAttempt, UpdateRecord, UpdateStateName, Webhook

# History lists are bounded so a long-running demo can't grow without limit.
HISTORY_LIMIT = 10_000


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
    messages: MessageStore = field(default_factory=lambda: MessageStore(HISTORY_LIMIT))
    files: FileStore = field(default_factory=FileStore)
    profile: BotProfile = field(default_factory=BotProfile)
    callback_queries: OrderedDict[str, CallbackQueryRecord] = field(default_factory=OrderedDict)
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_message_id: dict[int, int] = field(default_factory=dict)
    # Pending updates indexed per ordering key (each in update_id order), so delivery
    # finds a chat's next update without scanning the whole history.
    pending_by_key: dict[str, dict[int, UpdateRecord]] = field(default_factory=dict)
    pending_total: int = 0
    #: Fired with the state's ``changed`` for changes of this bot (EmulatorState.notify): its
    #: delivery worker waits here, so one bot's change wakes one worker, not one per bot.
    changed: Pulse = field(default_factory=Pulse, repr=False, compare=False)

    @property
    def user(self) -> dict[str, Any]:
        """The bot as a Telegram User object."""
        # setMyName without a language renames the bot, as BotFather's /setname does.
        name = self.profile.names.get("", self.first_name)
        return {"id": self.id, "is_bot": True, "first_name": name, "username": self.username}

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

    def remember_callback_query(self, record: CallbackQueryRecord) -> None:
        self.callback_queries[record.id] = record
        while len(self.callback_queries) > HISTORY_LIMIT:
            self.callback_queries.popitem(last=False)

    def next_message_id(self, chat_id: int) -> int:
        value = self.last_message_id.get(chat_id, 0) + 1
        self.last_message_id[chat_id] = value
        return value


def bot_id_of(token: str) -> int:
    head, sep, _ = token.partition(":")
    if not sep or not head.isdigit():
        raise ValueError("a bot token looks like <digits>:<secret>")
    return int(head)
