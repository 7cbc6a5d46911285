"""editMessageText, editMessageCaption and editMessageReplyMarkup on messages the bot sent."""

from __future__ import annotations

from typing import Any

from .context import CallContext, MethodResult
from .errors import bad_request
from .markup import parse_reply_markup
from .messages import ChatMessage, content_kind
from .params import Params
from .targets import caption, edit_target, message_text

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same"
    " as a current content and reply markup of the message"
)
_CAPTIONED_KINDS = frozenset({"photo", "document", "animation", "audio", "video", "voice"})


def _inline_markup(params: Params) -> dict[str, Any] | None:
    """An edit without reply_markup removes the inline keyboard, as in Telegram."""
    markup = parse_reply_markup(params)
    return markup if markup is not None and "inline_keyboard" in markup else None


def _apply(ctx: CallContext, entry: ChatMessage, changes: dict[str, Any]) -> MethodResult:
    if all(entry.message.get(key) == value for key, value in changes.items()):
        raise bad_request(NOT_MODIFIED)
    ctx.state.record_edit(entry, changes)
    return MethodResult(dict(entry.message))


async def edit_message_text(ctx: CallContext, params: Params) -> MethodResult:
    entry = edit_target(ctx, params)
    text, entities = message_text(params)
    markup = _inline_markup(params)
    if content_kind(entry.message) != "text":
        raise bad_request("there is no text in the message to edit")
    return _apply(ctx, entry, {"text": text, "entities": entities, "reply_markup": markup})


async def edit_message_caption(ctx: CallContext, params: Params) -> MethodResult:
    entry = edit_target(ctx, params)
    new_caption, entities = caption(params)
    markup = _inline_markup(params)
    if content_kind(entry.message) not in _CAPTIONED_KINDS:
        raise bad_request("there is no caption in the message to edit")
    changes = {"caption": new_caption, "caption_entities": entities, "reply_markup": markup}
    return _apply(ctx, entry, changes)


async def edit_message_reply_markup(ctx: CallContext, params: Params) -> MethodResult:
    entry = edit_target(ctx, params)
    return _apply(ctx, entry, {"reply_markup": _inline_markup(params)})
