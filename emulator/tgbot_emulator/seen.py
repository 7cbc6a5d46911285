"""What the emulator learns from updates it is given: chats, users, messages, callback queries.

Replies and the control API rely on it: a reply goes to a chat as it looked in the
update, a bot can edit/copy/delete a user's message, a pressed button can be answered.
"""

from __future__ import annotations

import time
from typing import Any

from .bots import Bot
from .messages import ChatMessage
from .records import CallbackQueryRecord

# Update fields whose payload is a new message in a chat / an edit of one.
NEW_MESSAGE_KINDS = frozenset({"message", "channel_post", "business_message"})
EDITED_MESSAGE_KINDS = frozenset({"edited_message", "edited_channel_post", "edited_business_message"})


def remember_update(bot: Bot, kind: str, body: Any, update_id: int) -> None:
    _remember_chat(bot, body)
    if not isinstance(body, dict):
        return
    if kind in NEW_MESSAGE_KINDS:
        _remember_user_message(bot, body, update_id)
    elif kind in EDITED_MESSAGE_KINDS:
        _remember_user_edit(bot, body)
    elif kind == "callback_query":
        _remember_callback_query(bot, body, update_id)


def _remember_user_edit(bot: Bot, message: dict[str, Any]) -> None:
    chat, message_id = message.get("chat"), message.get("message_id")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int) or not isinstance(message_id, int):
        return
    entry = bot.messages.get(chat["id"], message_id)
    if entry is not None and not entry.from_bot:
        entry.message = dict(message)
        entry.edited = True


def _remember_callback_query(bot: Bot, query: dict[str, Any], update_id: int) -> None:
    """A callback query in any update can be answered once, as in Telegram."""
    query_id = query.get("id")
    if not isinstance(query_id, str) or not query_id:
        return
    raw_message, raw_sender = query.get("message"), query.get("from")
    message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
    sender: dict[str, Any] = raw_sender if isinstance(raw_sender, dict) else {}
    record = CallbackQueryRecord(
        id=query_id,
        update_id=update_id,
        chat_id=int(message.get("chat", {}).get("id", 0) or 0),
        message_id=int(message.get("message_id", 0) or 0),
        data=str(query.get("data") or ""),
        user_id=int(sender.get("id", 0) or 0),
        created_at=time.time(),
    )
    bot.remember_callback_query(record)


def _remember_user_message(bot: Bot, message: dict[str, Any], update_id: int) -> None:
    chat = message.get("chat")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        return
    if not isinstance(message.get("message_id"), int) or "date" not in message:
        return
    bot.messages.add(ChatMessage(message, from_bot=False, update_id=update_id))


def _remember_chat(bot: Bot, body: Any) -> None:
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
