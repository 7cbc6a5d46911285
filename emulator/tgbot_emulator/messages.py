"""Messages of every chat a bot is in, as they are now: edited in place, flagged when deleted.

Bot messages (sent through the Bot API or a webhook reply) and user messages (from
injected updates) share one store, so the bot can edit, copy, forward and delete
them, and the control API can show a chat as a transcript.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .records import Via

# Message content fields, first match wins: what kind of message it is.
CONTENT_KINDS = ("text", "photo", "document", "animation", "audio", "video", "voice", "sticker")


def content_kind(message: dict[str, Any]) -> str:
    for kind in CONTENT_KINDS:
        if kind in message:
            return kind
    return "other"


@dataclass
class ChatMessage:
    message: dict[str, Any]
    from_bot: bool
    via: Via | None = None
    reply_to_update_id: int | None = None
    update_id: int | None = None
    edited: bool = False
    deleted: bool = False

    @property
    def chat_id(self) -> int:
        return int(self.message["chat"]["id"])

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    def sent_view(self) -> dict[str, Any]:
        """One entry of GET /bots/{id}/sent (kept compatible with earlier versions)."""
        out: dict[str, Any] = {
            "chat_id": self.chat_id,
            "text": self.message.get("text"),
            "caption": self.message.get("caption"),
            "kind": content_kind(self.message),
            "message_id": self.message_id,
            "date": self.message["date"],
            "via": self.via,
            "reply_markup": self.message.get("reply_markup"),
            "edited": self.edited,
            "deleted": self.deleted,
            "message": self.message,
        }
        if self.reply_to_update_id is not None:
            out["reply_to_update_id"] = self.reply_to_update_id
        return out

    def transcript_view(self) -> dict[str, Any]:
        """One line of a chat transcript: who said what, and what became of it."""
        return {
            "message_id": self.message_id,
            "from_bot": self.from_bot,
            "from": self.message.get("from"),
            "date": self.message["date"],
            "kind": content_kind(self.message),
            "text": self.message.get("text"),
            "caption": self.message.get("caption"),
            "reply_markup": self.message.get("reply_markup"),
            "edited": self.edited,
            "edit_date": self.message.get("edit_date"),
            "deleted": self.deleted,
            "via": self.via,
            "update_id": self.update_id,
            "message": self.message,
        }


class MessageStore:
    """Bounded: the oldest messages are forgotten first, so a long demo can't grow forever."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._by_key: OrderedDict[tuple[int, int], ChatMessage] = OrderedDict()

    def add(self, entry: ChatMessage) -> ChatMessage:
        self._by_key[(entry.chat_id, entry.message_id)] = entry
        self._by_key.move_to_end((entry.chat_id, entry.message_id))
        while len(self._by_key) > self._limit:
            self._by_key.popitem(last=False)
        return entry

    def get(self, chat_id: int, message_id: int) -> ChatMessage | None:
        """The live message; deleted ones are gone for the Bot API."""
        entry = self._by_key.get((chat_id, message_id))
        return None if entry is None or entry.deleted else entry

    def find(self, message_id: int, chat_id: int | None = None) -> list[ChatMessage]:
        """Live messages with this id (in any chat unless one is given)."""
        if chat_id is not None:
            found = self.get(chat_id, message_id)
            return [found] if found is not None else []
        return [m for (_, mid), m in self._by_key.items() if mid == message_id and not m.deleted]

    def sent(self) -> list[ChatMessage]:
        return [m for m in self._by_key.values() if m.from_bot]

    def chat(self, chat_id: int) -> list[ChatMessage]:
        return [m for (cid, _), m in self._by_key.items() if cid == chat_id]

    def chat_ids(self) -> list[int]:
        return list(dict.fromkeys(cid for cid, _ in self._by_key))
