"""SIGTERM in the middle of a 5 s handler: the reply still arrives and Telegram does not redeliver.

Driven like a pod stop: the bot and the sidecar get SIGTERM at the same moment, with the real
tgbot-emulator delivering (and retrying after 1 s) through the real tgbot-sidecar.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from .conftest import BOT_ID, BOTS, TOKEN, Stack, wait_for_line

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("script", "replies"),
    [
        ("slow_aiogram.py", {"api call after the wait": "api", "reply after the wait": "webhook_reply"}),
        ("slow_ptb.py", {"reply after the wait": "api"}),
    ],
)
async def test_sigterm_during_a_slow_handler_finishes_it(stack: Stack, script: str, replies: dict[str, str]):
    bot = await stack.start_bot(BOTS / script)
    update_id = await stack.client.send_user_message(BOT_ID, "slow")
    await wait_for_line(bot, "handler started")

    bot.process.send_signal(signal.SIGTERM)
    stack.sidecar.process.send_signal(signal.SIGTERM)

    await stack.client.wait_delivered(BOT_ID, [update_id], timeout=30)
    assert await asyncio.wait_for(bot.process.wait(), 30) == 0, bot.tail()
    assert await asyncio.wait_for(stack.sidecar.process.wait(), 30) == 0, stack.sidecar.tail()
    log = bot.log.read_text()
    assert log.index("handler finished") < log.index("stopped")
    if script == "slow_aiogram.py":
        assert log.index("handler finished") < log.index("dispatcher shutdown")

    sent = {m["text"]: m["via"] for m in await stack.client.sent_messages(BOT_ID)}
    assert sent == replies
    # Longer than the emulator's 1 s retry delay: a failed first attempt would have been retried.
    await asyncio.sleep(2.5)
    attempts = [d for d in await stack.client.deliveries(BOT_ID) if d["update_id"] == update_id]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 200)]
    assert TOKEN not in log
    assert TOKEN.split(":", 1)[1] not in log


async def test_ptb_handler_failure_answers_500_and_telegram_retries(stack: Stack):
    bot = await stack.start_bot(BOTS / "slow_ptb.py")
    await stack.client.send_user_message(BOT_ID, "fail")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(await stack.client.deliveries(BOT_ID)) < 2:
        assert loop.time() < deadline, stack.sidecar.tail()
        await asyncio.sleep(0.1)
    first = (await stack.client.deliveries(BOT_ID))[0]
    assert first["status"] == 502  # the bot's 500, as the sidecar reports it to Telegram
    assert "this handler always fails" in bot.log.read_text()  # logged once, with the traceback
    assert TOKEN not in bot.log.read_text()
