"""The control API under /_emulator/: drive and inspect the emulator from tests."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from . import clock, control_chat
from .appkeys import CONFIG, STATE
from .control_common import PREFIX, Body, bot_of, error, read_body
from .faults import Fault
from .state import BotConflictError, bot_id_of
from .views import bot_view, call_view, delivery_view, webhook_view


class AddBot(Body):
    token: str
    username: str
    first_name: str | None = None


class ReplaceToken(Body):
    token: str


class UserMessage(Body):
    text: str
    chat_id: int | None = None
    user_id: int | None = None
    first_name: str | None = None


class InjectUpdate(Body):
    update: dict[str, Any]


class WaitDelivered(Body):
    update_ids: list[int]
    timeout: float = Field(default=30.0, ge=0)


class AddFault(Body):
    kind: Literal["429", "500", "502", "drop"]
    count: int = Field(default=1, ge=1)
    method: str | None = None
    bot_id: int | None = None
    retry_after: int | None = Field(default=None, ge=0)
    # A flood wait: every matching call fails for this long, retry_after counting down.
    for_seconds: float | None = Field(default=None, gt=0)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() in {"1", "true", "yes"}


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def reset(request: web.Request) -> web.Response:
    """Back to the start: no history, no webhooks, only the bots from the configuration."""
    state = request.app[STATE]
    state.reset()
    for spec in request.app[CONFIG].bots:
        state.add_bot(spec.token, spec.username, spec.first_name)
    return web.json_response({"ok": True})


async def list_bots(request: web.Request) -> web.Response:
    return web.json_response([bot_view(bot) for bot in request.app[STATE].bots.values()])


async def add_bot(request: web.Request) -> web.Response:
    body = await read_body(request, AddBot)
    try:
        bot_id_of(body.token)
        bot = request.app[STATE].add_bot(body.token, body.username, body.first_name)
    except ValueError:
        return error(400, "a bot token looks like <digits>:<secret>")
    except BotConflictError as exc:
        return error(409, str(exc))
    return web.json_response(bot_view(bot))


async def get_bot(request: web.Request) -> web.Response:
    return web.json_response(bot_view(bot_of(request)))


async def replace_token(request: web.Request) -> web.Response:
    bot = bot_of(request)
    body = await read_body(request, ReplaceToken)
    try:
        request.app[STATE].replace_token(bot.id, body.token)
    except (ValueError, BotConflictError) as exc:
        return error(400, str(exc))
    return web.json_response(bot_view(bot))


async def send_user_message(request: web.Request) -> web.Response:
    bot = bot_of(request)
    body = await read_body(request, UserMessage)
    record = request.app[STATE].user_message(bot, body.text, body.chat_id, body.user_id, body.first_name)
    return web.json_response({"update_id": record.update_id, "update": record.payload})


async def inject_update(request: web.Request) -> web.Response:
    bot = bot_of(request)
    body = await read_body(request, InjectUpdate)
    try:
        record = request.app[STATE].inject_update(bot, body.update)
    except ValueError as exc:
        return error(400, str(exc))
    return web.json_response({"update_id": record.update_id, "update": record.payload})


async def list_updates(request: web.Request) -> web.Response:
    return web.json_response([record.as_dict() for record in bot_of(request).updates.values()])


async def sent_messages(request: web.Request) -> web.Response:
    return web.json_response([sent.sent_view() for sent in bot_of(request).messages.sent()])


async def calls(request: web.Request) -> web.Response:
    bot = bot_of(request)
    method = request.query.get("method", "").lower()
    reveal = _flag(request, "reveal_secrets")
    return web.json_response(
        [call_view(c, reveal) for c in bot.calls if not method or c.method.lower() == method]
    )


async def webhook(request: web.Request) -> web.Response:
    return web.json_response(webhook_view(bot_of(request), _flag(request, "reveal_secrets")))


async def deliveries(request: web.Request) -> web.Response:
    return web.json_response([delivery_view(a) for a in bot_of(request).deliveries])


async def wait_delivered(request: web.Request) -> web.Response:
    bot = bot_of(request)
    body = await read_body(request, WaitDelivered)
    state = request.app[STATE]
    unknown = [u for u in body.update_ids if u not in bot.updates]
    if unknown:
        return error(404, f"unknown update ids: {unknown}")
    deadline = clock.now() + body.timeout
    while True:
        records = [bot.updates[u] for u in body.update_ids]
        dropped = [r.update_id for r in records if r.state == "dropped"]
        if dropped:
            return error(409, f"dropped, will never be delivered: {dropped}")
        waiting = [r.update_id for r in records if r.state != "delivered"]
        if not waiting:
            return web.json_response({"ok": True, "delivered": body.update_ids})
        remaining = deadline - clock.now()
        if remaining <= 0 or state.bots.get(bot.id) is not bot:
            return web.json_response({"ok": False, "error": "timeout", "pending": waiting}, status=408)
        await state.changed.wait(remaining)


async def add_fault(request: web.Request) -> web.Response:
    body = await read_body(request, AddFault)
    fault = Fault(body.kind, body.count, body.method, body.bot_id, body.retry_after, body.for_seconds)
    request.app[STATE].faults.add(fault)
    return web.json_response({"ok": True})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return web.json_response({"ok": True})


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response(
        [
            {
                "kind": f.kind,
                "remaining": f.remaining,
                "method": f.method,
                "bot_id": f.bot_id,
                "retry_after": f.retry_after,
                "for_seconds": f.for_seconds,
            }
            for f in request.app[STATE].faults.snapshot()
        ]
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    bot = PREFIX + "/bots/{bot_id}"
    r.add_get(PREFIX + "/health", health)
    r.add_post(PREFIX + "/reset", reset)
    r.add_get(PREFIX + "/bots", list_bots)
    r.add_post(PREFIX + "/bots", add_bot)
    r.add_get(bot, get_bot)
    r.add_post(bot + "/token", replace_token)
    r.add_post(bot + "/messages", send_user_message)
    r.add_post(bot + "/updates", inject_update)
    r.add_get(bot + "/updates", list_updates)
    r.add_get(bot + "/sent", sent_messages)
    r.add_get(bot + "/calls", calls)
    r.add_get(bot + "/webhook", webhook)
    r.add_get(bot + "/deliveries", deliveries)
    r.add_post(bot + "/wait-delivered", wait_delivered)
    r.add_get(PREFIX + "/faults", list_faults)
    r.add_post(PREFIX + "/faults", add_fault)
    r.add_delete(PREFIX + "/faults", clear_faults)
    control_chat.add_routes(app)
