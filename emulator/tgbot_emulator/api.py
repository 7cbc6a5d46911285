"""Routes of the Bot API itself: /bot<token>/<method>."""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from . import clock
from .appkeys import CONFIG, GLOBAL_LIMIT, STATE
from .errors import NOT_FOUND, UNAUTHORIZED, ApiError, too_many_requests
from .faults import Fault
from .methods import METHODS, CallContext, execute, loggable_method, stored_params
from .params import Params, parse_body
from .state import Bot, EmulatorState

log = logging.getLogger(__name__)

# What nginx in front of api.telegram.org answers on a 502: HTML, not JSON.
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.code)


async def handle_method(request: web.Request) -> web.StreamResponse:
    app = request.app
    state = app[STATE]
    bot = state.bot_by_token(request.match_info["token"])
    if bot is None:
        return error_response(UNAUTHORIZED)
    method = request.match_info["method"]
    if method.lower() not in METHODS:
        # An unknown name is user input: keep it token-free everywhere it is recorded.
        method = loggable_method(method, bot.token)
    try:
        params: Params = dict(request.query)
        params.update(parse_body(request.headers.get(hdrs.CONTENT_TYPE, ""), await request.read()))
    except web.HTTPRequestEntityTooLarge:
        # Telegram's answer to a body over its upload limit (50 MB here too).
        too_large = ApiError(413, "Request Entity Too Large")
        state.record_call(bot, method, {}, too_large.code, "api", too_large.description)
        return error_response(too_large)
    except ApiError as error:
        state.record_call(bot, method, {}, error.code, "api", error.description)
        return error_response(error)
    limit = app.get(GLOBAL_LIMIT)
    if limit is not None and (wait := limit.take()) is not None:
        limited = too_many_requests(wait)
        state.record_call(bot, method, stored_params(params), limited.code, "api", limited.description)
        return error_response(limited)
    fault = state.faults.take(bot.id, method)
    if fault is not None:
        return _fault_response(request, state, bot, method, params, fault)
    status, body = await execute(CallContext(state, app[CONFIG], bot), method, params)
    return web.json_response(body, status=status)


def _fault_response(
    request: web.Request, state: EmulatorState, bot: Bot, method: str, params: Params, fault: Fault
) -> web.StreamResponse:
    stored = stored_params(params)
    if fault.kind == "drop":
        state.record_call(bot, method, stored, None, "api", "fault: connection dropped")
        # Abort without a byte of response; aiohttp treats the failed write as a disconnect.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)
    if fault.kind == "502":
        state.record_call(bot, method, stored, 502, "api", "fault: 502 Bad Gateway")
        return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
    error = (
        too_many_requests(fault.answer_retry_after(clock.now()))
        if fault.kind == "429"
        else ApiError(500, "Internal Server Error")
    )
    state.record_call(bot, method, stored, error.code, "api", f"fault: {error.description}")
    return error_response(error)


async def handle_not_found(request: web.Request) -> web.Response:
    return error_response(NOT_FOUND)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", r"/bot{token:[^/]+}/{method:[^/]+}", handle_method)
    app.router.add_route("*", r"/bot{rest:.*}", handle_not_found)
