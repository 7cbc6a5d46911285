"""Sending, copying, forwarding and deleting messages."""

from __future__ import annotations

import time
from typing import Any

from .context import CallContext, MethodResult
from .errors import bad_request
from .markup import parse_reply_markup
from .messages import ChatMessage
from .params import Params, get_int, get_json
from .targets import caption, chat_id, find_message, message_id, message_text
from .updates import make_chat

# Content a copy keeps (everything that isn't about who sent it, when, or where).
_COPIED_FIELDS = (
    "text",
    "entities",
    "photo",
    "document",
    "caption",
    "caption_entities",
    "link_preview_options",
)


def post(
    ctx: CallContext, target_chat: int, content: dict[str, Any], markup: dict[str, Any] | None, params: Params
) -> ChatMessage:
    """Put a new bot message into a chat and record it."""
    bot = ctx.bot
    chat = bot.chats.get(target_chat) or make_chat(target_chat, bot.users.get(target_chat))
    bot.chats.setdefault(target_chat, chat)
    message: dict[str, Any] = {
        "message_id": bot.next_message_id(target_chat),
        "from": bot.user,
        "chat": chat,
        "date": int(time.time()),
        **content,
    }
    replied = _replied_message(ctx, target_chat, params)
    if replied is not None:
        message["reply_to_message"] = replied
    # Telegram echoes only inline keyboards in the sent Message.
    if markup is not None and "inline_keyboard" in markup:
        message["reply_markup"] = markup
    return ctx.state.record_sent(bot, message, ctx.via, ctx.reply_to_update_id)


def _replied_message(ctx: CallContext, target_chat: int, params: Params) -> dict[str, Any] | None:
    reply = get_json(params, "reply_parameters") if params.get("reply_parameters") not in (None, "") else None
    wanted = reply.get("message_id") if isinstance(reply, dict) else get_int(params, "reply_to_message_id")
    if not isinstance(wanted, int) or wanted <= 0:
        return None
    entry = ctx.bot.messages.get(target_chat, wanted)
    allow_missing = isinstance(reply, dict) and bool(reply.get("allow_sending_without_reply"))
    if entry is None:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return {k: v for k, v in entry.message.items() if k != "reply_to_message"}


async def send_message(ctx: CallContext, params: Params) -> MethodResult:
    target = chat_id(ctx, params)
    text, text_entities = message_text(params)
    markup = parse_reply_markup(params)
    content: dict[str, Any] = {"text": text}
    if text_entities:
        content["entities"] = text_entities
    return MethodResult(post(ctx, target, content, markup, params).message)


def _source(ctx: CallContext, params: Params, what: str) -> ChatMessage:
    from_chat = chat_id(ctx, params, "from_chat_id")
    return find_message(ctx, from_chat, message_id(params), what)


async def copy_message(ctx: CallContext, params: Params) -> MethodResult:
    target = chat_id(ctx, params)
    source = _source(ctx, params, "message to copy")
    content = {k: v for k, v in source.message.items() if k in _COPIED_FIELDS}
    if "caption" in params:
        new_caption, new_entities = caption(params)
        content.pop("caption", None)
        content.pop("caption_entities", None)
        if new_caption is not None:
            content["caption"] = new_caption
            if new_entities:
                content["caption_entities"] = new_entities
    entry = post(ctx, target, content, parse_reply_markup(params), params)
    return MethodResult({"message_id": entry.message_id})


async def forward_message(ctx: CallContext, params: Params) -> MethodResult:
    target = chat_id(ctx, params)
    source = _source(ctx, params, "message to forward")
    content = {k: v for k, v in source.message.items() if k in _COPIED_FIELDS}
    sender = source.message.get("from")
    origin_chat = source.message["chat"]
    if origin_chat.get("type") == "channel":
        content["forward_origin"] = {
            "type": "channel",
            "chat": origin_chat,
            "message_id": source.message_id,
            "date": source.message["date"],
        }
    else:
        content["forward_origin"] = {"type": "user", "sender_user": sender, "date": source.message["date"]}
    return MethodResult(post(ctx, target, content, None, params).message)


async def delete_message(ctx: CallContext, params: Params) -> MethodResult:
    if params.get("chat_id") in (None, ""):
        raise bad_request("chat identifier is not specified")
    mid = message_id(params)
    if mid == 0:
        raise bad_request("message identifier is not specified")
    entry = find_message(ctx, chat_id(ctx, params), mid, "message to delete")
    ctx.state.record_delete(entry)
    return MethodResult(True)
