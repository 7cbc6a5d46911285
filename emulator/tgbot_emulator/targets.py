"""Parameters most methods share: which chat, which message, what text; with Telegram's errors."""

from __future__ import annotations

from typing import Any

from .context import CallContext
from .errors import bad_request
from .formatting import apply_parse_mode
from .messages import ChatMessage
from .params import Params, get_int, get_json, get_str

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
PARSE_MODES = frozenset({"", "none", "markdown", "markdownv2", "html"})


def chat_id(ctx: CallContext, params: Params, name: str = "chat_id") -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        raise bad_request(f"{name} is empty")
    if isinstance(raw, str) and raw.startswith("@"):
        for chat in ctx.bot.chats.values():
            if str(chat.get("username", "")).lower() == raw[1:].lower():
                return int(chat["id"])
        raise bad_request("chat not found")
    value = get_int(params, name)
    if not value:
        raise bad_request("chat not found")
    return value


def known_chat(ctx: CallContext, params: Params, name: str = "chat_id") -> dict[str, Any]:
    """A chat the bot has seen (an update came from it, or the bot wrote to it)."""
    value = chat_id(ctx, params, name)
    chat = ctx.bot.chats.get(value)
    if chat is None:
        raise bad_request("chat not found")
    return chat


def message_id(params: Params, name: str = "message_id") -> int:
    """0 when missing or not a positive number, as the Bot API server reads it."""
    value = get_int(params, name, 0) or 0
    return value if value > 0 else 0


def find_message(ctx: CallContext, chat: int, mid: int, what: str) -> ChatMessage:
    entry = ctx.bot.messages.get(chat, mid) if mid else None
    if entry is None:
        raise bad_request(f"{what} not found")
    return entry


def edit_target(ctx: CallContext, params: Params) -> ChatMessage:
    """The message an edit* call means: chat_id + message_id (inline messages don't exist here)."""
    mid = message_id(params)
    if params.get("chat_id") in (None, "") and mid == 0:
        if not get_str(params, "inline_message_id"):
            raise bad_request("message identifier is not specified")
        raise bad_request("MESSAGE_ID_INVALID")
    entry = find_message(ctx, chat_id(ctx, params), mid, "message to edit")
    if not entry.from_bot:
        raise bad_request("message can't be edited")
    return entry


def check_parse_mode(params: Params) -> str:
    mode = (get_str(params, "parse_mode") or "").lower()
    if mode not in PARSE_MODES:
        raise bad_request("unsupported parse_mode")
    return mode


def entities(params: Params, name: str) -> list[Any] | None:
    value = get_json(params, name) if params.get(name) not in (None, "") else None
    return value if isinstance(value, list) and value else None


def message_text(params: Params) -> tuple[str, list[Any] | None]:
    mode = check_parse_mode(params)
    text, found = apply_parse_mode(get_str(params, "text") or "", mode, entities(params, "entities"))
    if not text.strip():
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return text, found


def caption(params: Params) -> tuple[str | None, list[Any] | None]:
    """(caption or None when absent/empty, caption_entities)."""
    mode = check_parse_mode(params)
    raw = get_str(params, "caption")
    if raw is None:
        return None, None
    text, found = apply_parse_mode(raw, mode, entities(params, "caption_entities"))
    if not text.strip():
        return None, None
    if len(text) > MAX_CAPTION_LENGTH:
        raise bad_request("message caption is too long")
    return text, found
