"""What a user does besides typing: press an inline button, send a /command.

Both become updates exactly like Telegram's: a callback_query carrying the message as it
is now, or a message whose text starts with a bot_command entity.
"""

from __future__ import annotations

import re
import secrets
import zlib
from typing import Any

from .markup import inline_buttons
from .messages import ChatMessage
from .records import CallbackQueryRecord, UpdateRecord
from .state import Bot, EmulatorState
from .updates import DEFAULT_USER_ID, make_user

_COMMAND_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")


class InteractionError(Exception):
    """The interaction is impossible; ``status`` is the control API's HTTP status for it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def find_bot_message(bot: Bot, message_id: int, chat_id: int | None, user_id: int | None) -> ChatMessage:
    found = [m for m in bot.messages.find(message_id, chat_id) if m.from_bot]
    if len(found) > 1 and user_id is not None:
        found = [m for m in found if m.chat_id == user_id] or found
    if not found:
        where = f" in chat {chat_id}" if chat_id is not None else ""
        raise InteractionError(404, f"no message {message_id} from the bot{where} (or it was deleted)")
    if len(found) > 1:
        raise InteractionError(409, f"message {message_id} exists in several chats; give chat_id")
    return found[0]


def pick_button(entry: ChatMessage, callback_data: str | None, text: str | None) -> dict[str, Any]:
    buttons = inline_buttons(entry.message.get("reply_markup"))
    if not buttons:
        raise InteractionError(409, f"message {entry.message_id} has no inline keyboard")
    if callback_data is not None:
        matches = [b for b in buttons if b.get("callback_data") == callback_data]
    else:
        matches = [b for b in buttons if b.get("text") == text]
    if not matches:
        offered = [b.get("text") for b in buttons]
        wanted = f"callback_data {callback_data!r}" if callback_data is not None else f"text {text!r}"
        where = f"on message {entry.message_id}"
        raise InteractionError(404, f"no button with {wanted} {where}; buttons: {offered}")
    button = matches[0]
    if not isinstance(button.get("callback_data"), str):
        kinds = [k for k in button if k != "text"]
        label = button.get("text")
        raise InteractionError(409, f"button {label!r} sends no callback_data ({', '.join(kinds)})")
    return button


def press_button(
    state: EmulatorState,
    bot: Bot,
    message_id: int,
    *,
    chat_id: int | None = None,
    callback_data: str | None = None,
    text: str | None = None,
    user_id: int | None = None,
    first_name: str | None = None,
) -> tuple[UpdateRecord, CallbackQueryRecord]:
    if (callback_data is None) == (text is None):
        raise InteractionError(400, "give exactly one of callback_data and text")
    entry = find_bot_message(bot, message_id, chat_id, user_id)
    button = pick_button(entry, callback_data, text)
    if user_id is None:
        user_id = entry.chat_id if entry.chat_id > 0 else DEFAULT_USER_ID
    user = make_user(user_id, first_name) if first_name else bot.users.get(user_id) or make_user(user_id)
    query = {
        # Telegram's query ids are 64-bit numbers as strings; chat_instance is stable per chat.
        "id": str(secrets.randbits(63)),
        "from": user,
        "message": dict(entry.message),
        "chat_instance": str(zlib.crc32(f"{bot.id}:{entry.chat_id}".encode()) * 1_000_003),
        "data": button["callback_data"],
    }
    record = state.inject_update(bot, {"callback_query": query})
    return record, bot.callback_queries[query["id"]]


def send_command(
    state: EmulatorState,
    bot: Bot,
    command: str,
    *,
    args: str | None = None,
    mention: bool = False,
    chat_id: int | None = None,
    user_id: int | None = None,
    first_name: str | None = None,
) -> UpdateRecord:
    name = command.removeprefix("/")
    if not _COMMAND_NAME.fullmatch(name):
        raise InteractionError(400, "a command is 1-32 characters of A-Z, a-z, 0-9 and _")
    text = f"/{name}" + (f"@{bot.username}" if mention else "") + (f" {args}" if args else "")
    return state.user_message(bot, text, chat_id=chat_id, user_id=user_id, first_name=first_name)
