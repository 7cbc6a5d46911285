"""Shapes of Update objects: users, chats, messages, and how updates are classified."""

from __future__ import annotations

import re
import time
from typing import Any

# Every field of Update besides update_id (Bot API 9.x).
UPDATE_TYPES: tuple[str, ...] = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)

# Telegram leaves these out unless a bot asks for them by name.
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
DEFAULT_UPDATE_TYPES = frozenset(UPDATE_TYPES) - NOT_BY_DEFAULT

DEFAULT_USER_ID = 100_000_001

# A bot command as Telegram detects it: "/" + up to 32 of [A-Za-z0-9_], optionally @botname,
# at the start of the text or after whitespace.
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@/])")


def update_type(update: dict[str, Any]) -> str:
    """The Update field that carries the payload, e.g. "message"."""
    for key in update:
        if key != "update_id":
            return key
    raise ValueError("an update needs one field besides update_id")


def is_allowed(kind: str, allowed: list[str] | None) -> bool:
    if allowed is None:
        return kind in DEFAULT_UPDATE_TYPES
    return kind in allowed


def ordering_key(update: dict[str, Any]) -> str:
    """Updates sharing a key are delivered one at a time, in order (per chat).

    Payloads without a chat (inline queries, polls...) are ordered per user, and
    those without either are independent of everything else.
    """
    body = update.get(update_type(update))
    if isinstance(body, dict):
        for holder in (body, body.get("message")):
            if isinstance(holder, dict):
                chat = holder.get("chat")
                if isinstance(chat, dict) and "id" in chat:
                    return f"chat:{chat['id']}"
        user = body.get("from") or body.get("user")
        if isinstance(user, dict) and "id" in user:
            return f"user:{user['id']}"
    return f"update:{update.get('update_id')}"


def make_user(user_id: int, first_name: str | None = None, *, is_bot: bool = False) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name or f"User{user_id}"}
    if not is_bot:
        user["language_code"] = "en"
    return user


def make_chat(chat_id: int, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """A private chat for positive ids (Telegram: chat id == user id), groups otherwise."""
    if chat_id > 0:
        chat: dict[str, Any] = {"id": chat_id, "type": "private"}
        if user is not None:
            chat["first_name"] = user["first_name"]
            if "username" in user:
                chat["username"] = user["username"]
        return chat
    # -100... ids are supergroups and channels in Telegram's numbering.
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}


def make_message(
    message_id: int,
    chat: dict[str, Any],
    sender: dict[str, Any],
    text: str,
    date: int | None = None,
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from": sender,
        "chat": chat,
        "date": int(time.time()) if date is None else date,
        "text": text,
    }


def utf16_length(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units, as in the Bot API."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entities Telegram would attach to a message with this text."""
    return [
        {"type": "bot_command", "offset": utf16_length(text[: m.start()]), "length": utf16_length(m.group())}
        for m in _COMMAND.finditer(text)
    ]
