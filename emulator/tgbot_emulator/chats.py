"""getChat, sendChatAction and answerCallbackQuery."""

from __future__ import annotations

import time
from typing import Any

from .context import CallContext, MethodResult
from .errors import bad_request
from .params import Params, get_bool, get_int, get_str
from .targets import chat_id, known_chat

# Every action the Bot API server understands (aliases included), lower-cased.
CHAT_ACTIONS = frozenset(
    {
        "cancel",
        "typing",
        "record_video",
        "upload_video",
        "record_audio",
        "record_voice",
        "upload_audio",
        "upload_voice",
        "upload_photo",
        "upload_document",
        "choose_sticker",
        "pick_up_location",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_CACHE_TIME = 24 * 30 * 60 * 60


async def get_chat(ctx: CallContext, params: Params) -> MethodResult:
    chat = known_chat(ctx, params)
    info: dict[str, Any] = {
        **chat,
        # Fields every ChatFullInfo has; the emulator's chats have no colours, reactions or gifts.
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }
    return MethodResult(info)


async def send_chat_action(ctx: CallContext, params: Params) -> MethodResult:
    action = (get_str(params, "action") or "").lower()
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat_id(ctx, params)
    return MethodResult(True)


async def answer_callback_query(ctx: CallContext, params: Params) -> MethodResult:
    query_id = get_str(params, "callback_query_id") or ""
    record = ctx.bot.callback_queries.get(query_id)
    if record is None or record.answer is not None:
        raise bad_request(QUERY_INVALID)
    text = get_str(params, "text") or ""
    if len(text) > MAX_CALLBACK_ANSWER_LENGTH:
        raise bad_request("MESSAGE_TOO_LONG")
    cache_time = max(0, min(get_int(params, "cache_time", 0) or 0, MAX_CACHE_TIME))
    record.answer = {
        "text": text or None,
        "show_alert": get_bool(params, "show_alert"),
        "url": get_str(params, "url") or None,
        "cache_time": cache_time,
    }
    record.answered_at = time.time()
    ctx.state.notify(ctx.bot)
    return MethodResult(True)
