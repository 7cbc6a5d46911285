"""The control API under /_emulator/: drive and inspect the emulator from tests."""

from __future__ import annotations

import json
import time
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .appkeys import CONFIG, STATE
from .faults import Fault
from .state import Bot, BotConflictError, bot_id_of
from .views import bot_view, call_view, delivery_view, webhook_view

PREFIX = "/_emulator"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddBot(_Body):
    token: str
    username: str
    first_name: str | None = None


class ReplaceToken(_Body):
    token: str


class UserMessage(_Body):
    text: str
    chat_id: int | None = None
    user_id: int | None = None
    first_name: str | None = None


class InjectUpdate(_Body):
    update: dict[str, Any]


class WaitDelivered(_Body):
    update_ids: list[int]
    timeout: float = Field(default=30.0, ge=0)


class AddFault(_Body):
    kind: Literal["429", "500", "502", "drop"]
    count: int = Field(default=1, ge=1)
    method: str | None = None
    bot_id: int | None = None
    retry_after: int | None = Field(default=None, ge=0)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


M = TypeVar("M", bound=BaseModel)


def _json_error(exc_type: type[web.HTTPError], message: str) -> web.HTTPError:
    return exc_type(text=json.dumps({"ok": False, "error": message}), content_type="application/json")


async def _body(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        # Field names and messages only: input values may be tokens.
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _json_error(web.HTTPBadRequest, f"invalid request: {detail}") from None


def _bot(request: web.Request) -> Bot:
    try:
        bot_id = int(request.match_info["bot_id"])
    except ValueError:
        bot_id = -1
    bot = request.app[STATE].bots.get(bot_id)
    if bot is None:
        raise _json_error(web.HTTPNotFound, "unknown bot")
    return bot


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
    body = await _body(request, AddBot)
    try:
        bot_id_of(body.token)
        bot = request.app[STATE].add_bot(body.token, body.username, body.first_name)
    except ValueError:
        return _error(400, "a bot token looks like <digits>:<secret>")
    except BotConflictError as exc:
        return _error(409, str(exc))
    return web.json_response(bot_view(bot))


async def get_bot(request: web.Request) -> web.Response:
    return web.json_response(bot_view(_bot(request)))


async def replace_token(request: web.Request) -> web.Response:
    bot = _bot(request)
    body = await _body(request, ReplaceToken)
    try:
        request.app[STATE].replace_token(bot.id, body.token)
    except (ValueError, BotConflictError) as exc:
        return _error(400, str(exc))
    return web.json_response(bot_view(bot))


async def send_user_message(request: web.Request) -> web.Response:
    bot = _bot(request)
    body = await _body(request, UserMessage)
    record = request.app[STATE].user_message(bot, body.text, body.chat_id, body.user_id, body.first_name)
    return web.json_response({"update_id": record.update_id, "update": record.payload})


async def inject_update(request: web.Request) -> web.Response:
    bot = _bot(request)
    body = await _body(request, InjectUpdate)
    try:
        record = request.app[STATE].inject_update(bot, body.update)
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response({"update_id": record.update_id, "update": record.payload})


async def list_updates(request: web.Request) -> web.Response:
    return web.json_response([record.as_dict() for record in _bot(request).updates.values()])


async def sent_messages(request: web.Request) -> web.Response:
    return web.json_response([sent.as_dict() for sent in _bot(request).sent])


async def calls(request: web.Request) -> web.Response:
    bot = _bot(request)
    method = request.query.get("method", "").lower()
    reveal = _flag(request, "reveal_secrets")
    return web.json_response(
        [call_view(c, reveal) for c in bot.calls if not method or c.method.lower() == method]
    )


async def webhook(request: web.Request) -> web.Response:
    return web.json_response(webhook_view(_bot(request), _flag(request, "reveal_secrets")))


async def deliveries(request: web.Request) -> web.Response:
    return web.json_response([delivery_view(a) for a in _bot(request).deliveries])


async def wait_delivered(request: web.Request) -> web.Response:
    bot = _bot(request)
    body = await _body(request, WaitDelivered)
    state = request.app[STATE]
    unknown = [u for u in body.update_ids if u not in bot.updates]
    if unknown:
        return _error(404, f"unknown update ids: {unknown}")
    deadline = time.monotonic() + body.timeout
    while True:
        records = [bot.updates[u] for u in body.update_ids]
        dropped = [r.update_id for r in records if r.state == "dropped"]
        if dropped:
            return _error(409, f"dropped, will never be delivered: {dropped}")
        waiting = [r.update_id for r in records if r.state != "delivered"]
        if not waiting:
            return web.json_response({"ok": True, "delivered": body.update_ids})
        remaining = deadline - time.monotonic()
        if remaining <= 0 or state.bots.get(bot.id) is not bot:
            return web.json_response({"ok": False, "error": "timeout", "pending": waiting}, status=408)
        await state.changed.wait(remaining)


async def add_fault(request: web.Request) -> web.Response:
    body = await _body(request, AddFault)
    request.app[STATE].faults.add(Fault(body.kind, body.count, body.method, body.bot_id, body.retry_after))
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
