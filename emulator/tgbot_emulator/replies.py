"""Methods sent back in a webhook response body ("reply into webhook")."""

from __future__ import annotations

import logging

from .config import EmulatorConfig
from .methods import CallContext, execute, stored_params
from .params import Params, get_str
from .state import Bot, EmulatorState

log = logging.getLogger(__name__)

# Telegram ignores these in a webhook reply: their result could not reach the bot.
_IGNORED = frozenset({"setwebhook", "deletewebhook", "close", "logout"})


def is_ignored(method: str) -> bool:
    lowered = method.lower()
    return lowered.startswith("get") or lowered in _IGNORED


async def execute_reply(
    state: EmulatorState, config: EmulatorConfig, bot: Bot, params: Params, update_id: int
) -> None:
    method = get_str(params, "method")
    if not method:
        return
    rest = {key: value for key, value in params.items() if key != "method"}
    if is_ignored(method):
        state.record_call(
            bot, method, stored_params(rest), None, "webhook_reply", "ignored in a webhook reply"
        )
        return
    ctx = CallContext(state, config, bot, via="webhook_reply", reply_to_update_id=update_id)
    status, body = await execute(ctx, method, rest)
    if status != 200:
        # The bot never sees this answer, as with Telegram; the call history keeps it.
        log.info("webhook reply %s for bot %s failed: %s", method, bot.id, body.get("description"))
