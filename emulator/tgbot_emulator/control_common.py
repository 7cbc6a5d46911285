"""Shared pieces of the control API routes: request bodies, errors, finding the bot."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from .appkeys import STATE
from .state import Bot

PREFIX = "/_emulator"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def json_error(exc_type: type[web.HTTPError], message: str) -> web.HTTPError:
    return exc_type(text=json.dumps({"ok": False, "error": message}), content_type="application/json")


async def read_body(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        # Field names and messages only: input values may be tokens.
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise json_error(web.HTTPBadRequest, f"invalid request: {detail}") from None


def bot_of(request: web.Request) -> Bot:
    try:
        bot_id = int(request.match_info["bot_id"])
    except ValueError:
        bot_id = -1
    bot = request.app[STATE].bots.get(bot_id)
    if bot is None:
        raise json_error(web.HTTPNotFound, "unknown bot")
    return bot
