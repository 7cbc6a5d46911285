"""sendPhoto and sendDocument: a file uploaded in the request, a known file_id, or a URL."""

from __future__ import annotations

import mimetypes
from typing import Any

from .context import CallContext, MethodResult
from .errors import bad_request
from .files import FileKind, StoredFile
from .images import image_size
from .markup import parse_reply_markup
from .messaging import post
from .params import Params, UploadedFile
from .targets import caption, chat_id

# Telegram's limits for uploads through the Bot API (https://core.telegram.org/bots/api#sending-files).
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_PHOTO_SIDES_SUM = 10_000
MAX_PHOTO_RATIO = 20
# Telegram stores photos scaled to fit this many pixels on the long side.
PHOTO_MAX_SIDE = 1280

WRONG_FILE_ID = "wrong file identifier/HTTP URL specified"


def _input_file(ctx: CallContext, params: Params, field: FileKind) -> StoredFile:
    value = params.get(field)
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.get(value.removeprefix("attach://"))
    if isinstance(value, UploadedFile):
        return _upload(ctx, field, value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.lower().startswith(("http://", "https://")):
            return ctx.bot.files.add_url(field, text)
        known = ctx.bot.files.get(text)
        if known is None:
            raise bad_request(WRONG_FILE_ID)
        if known.kind != field:
            raise bad_request("type of file mismatch")
        return known
    raise bad_request(f"there is no {field} in the request")


def _upload(ctx: CallContext, kind: FileKind, upload: UploadedFile) -> StoredFile:
    if not upload.content:
        raise bad_request("file must be non-empty")
    if kind == "photo":
        if len(upload.content) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        size = image_size(upload.content)
        if size is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > MAX_PHOTO_SIDES_SUM or max(width, height) > MAX_PHOTO_RATIO * min(width, height):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        scale = min(1.0, PHOTO_MAX_SIDE / max(width, height))
        return ctx.bot.files.add_upload(
            kind, upload.content, width=max(1, round(width * scale)), height=max(1, round(height * scale))
        )
    if len(upload.content) > MAX_DOCUMENT_BYTES:
        raise bad_request("file is too big")
    guessed, _ = mimetypes.guess_type(upload.filename)
    mime = guessed or upload.content_type or "application/octet-stream"
    return ctx.bot.files.add_upload(kind, upload.content, file_name=upload.filename or None, mime_type=mime)


def _with_caption(content: dict[str, Any], params: Params) -> dict[str, Any]:
    text, entities = caption(params)
    if text is not None:
        content["caption"] = text
        if entities:
            content["caption_entities"] = entities
    return content


async def send_photo(ctx: CallContext, params: Params) -> MethodResult:
    target = chat_id(ctx, params)
    # Everything is checked before the file is stored, so a refused call keeps nothing.
    content = _with_caption({}, params)
    markup = parse_reply_markup(params)
    content["photo"] = [_input_file(ctx, params, "photo").photo_size()]
    return MethodResult(post(ctx, target, content, markup, params).message)


async def send_document(ctx: CallContext, params: Params) -> MethodResult:
    target = chat_id(ctx, params)
    content = _with_caption({}, params)
    markup = parse_reply_markup(params)
    content["document"] = _input_file(ctx, params, "document").document()
    return MethodResult(post(ctx, target, content, markup, params).message)
