"""Control API routes for conversations: press a button, send a command, read a chat."""

from __future__ import annotations

from aiohttp import web

from .appkeys import STATE
from .control_common import PREFIX, Body, bot_of, error, json_error, read_body
from .interactions import InteractionError, press_button, send_command


class PressButton(Body):
    message_id: int
    chat_id: int | None = None
    callback_data: str | None = None
    text: str | None = None
    user_id: int | None = None
    first_name: str | None = None


class SendCommand(Body):
    command: str
    args: str | None = None
    mention: bool = False
    chat_id: int | None = None
    user_id: int | None = None
    first_name: str | None = None


async def press(request: web.Request) -> web.Response:
    bot = bot_of(request)
    body = await read_body(request, PressButton)
    try:
        record, query = press_button(
            request.app[STATE],
            bot,
            body.message_id,
            chat_id=body.chat_id,
            callback_data=body.callback_data,
            text=body.text,
            user_id=body.user_id,
            first_name=body.first_name,
        )
    except InteractionError as exc:
        return error(exc.status, str(exc))
    return web.json_response(
        {"update_id": record.update_id, "update": record.payload, "callback_query_id": query.id}
    )


async def command(request: web.Request) -> web.Response:
    bot = bot_of(request)
    body = await read_body(request, SendCommand)
    try:
        record = send_command(
            request.app[STATE],
            bot,
            body.command,
            args=body.args,
            mention=body.mention,
            chat_id=body.chat_id,
            user_id=body.user_id,
            first_name=body.first_name,
        )
    except InteractionError as exc:
        return error(exc.status, str(exc))
    return web.json_response({"update_id": record.update_id, "update": record.payload})


async def chats(request: web.Request) -> web.Response:
    bot = bot_of(request)
    out = []
    for chat_id in bot.messages.chat_ids():
        messages = bot.messages.chat(chat_id)
        chat = bot.chats.get(chat_id) or messages[0].message["chat"]
        out.append({"chat": chat, "message_count": len(messages)})
    return web.json_response(out)


async def transcript(request: web.Request) -> web.Response:
    bot = bot_of(request)
    try:
        chat_id = int(request.match_info["chat_id"])
    except ValueError:
        raise json_error(web.HTTPBadRequest, "chat_id must be an integer") from None
    return web.json_response([m.transcript_view() for m in bot.messages.chat(chat_id)])


async def callback_queries(request: web.Request) -> web.Response:
    return web.json_response([q.as_dict() for q in bot_of(request).callback_queries.values()])


async def files(request: web.Request) -> web.Response:
    bot = bot_of(request)
    return web.json_response([stored.view() for stored in bot.files.all()])


async def file_content(request: web.Request) -> web.Response:
    stored = bot_of(request).files.get(request.match_info["file_id"])
    if stored is None:
        return error(404, "unknown file_id")
    if stored.content is None:
        return error(410, "the file's bytes are no longer kept (byte budget) or it was given as a URL")
    return web.Response(body=stored.content, content_type=stored.mime_type or "application/octet-stream")


async def profile(request: web.Request) -> web.Response:
    return web.json_response(bot_of(request).profile.view())


def add_routes(app: web.Application) -> None:
    r = app.router
    bot = PREFIX + "/bots/{bot_id}"
    r.add_post(bot + "/press", press)
    r.add_post(bot + "/commands", command)
    r.add_get(bot + "/chats", chats)
    r.add_get(bot + "/chats/{chat_id}/messages", transcript)
    r.add_get(bot + "/callback-queries", callback_queries)
    r.add_get(bot + "/files", files)
    r.add_get(bot + "/files/{file_id}", file_content)
    r.add_get(bot + "/profile", profile)
