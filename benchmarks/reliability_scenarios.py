"""What a reliability run does to the chain: updates from many chats, secret-token rotations
through the operator's annotation, and SIGKILLs of the bot - each a task beside the others."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from tgbot_emulator import EmulatorClient

from .reliability_chain import Bot
from .stack import Stack, until


async def rotate(s: Stack, name: str, rotations: int, pause: float) -> list[float]:
    """Rotate the TelegramBot ``name``'s token through the annotation, one rotation after the other;
    returns their durations."""
    took = []
    for n in range(rotations):
        await asyncio.sleep(pause)
        before = ((await s.bot(name)).get("status") or {}).get("secretTokenRotatedAt")
        started = time.monotonic()
        await s.kubectl(
            "annotate",
            "tgbot",
            name,
            "-n",
            s.namespace,
            f"tgbot.dev/rotate-secret-token=r{n}-{time.time()}",
            "--overwrite",
        )

        def done(bot: dict[str, Any], before: Any = before) -> bool:
            status = bot.get("status") or {}
            return status.get("secretTokenRotatedAt") != before and status.get("rotationPhase") == "Idle"

        await until(f"rotation {n + 1}", lambda: s.bot(name), done, timeout=180)
        took.append(time.monotonic() - started)
    return took


async def chaos(bot: Bot, kills: int, every: float, down: float) -> None:
    """SIGKILL the bot ``kills`` times, about every ``every`` seconds; restart it ``down`` s later."""
    for _ in range(kills):
        await asyncio.sleep(every * random.uniform(0.6, 1.4))
        await bot.kill()
        await asyncio.sleep(down)
        await bot.start()


async def inject(client: EmulatorClient, bot_id: int, updates: int, chats: int, seconds: float) -> list[int]:
    """``updates`` messages from ``chats`` users, spread over about ``seconds``."""
    ids: list[int] = []
    started = time.monotonic()
    batch = 20

    async def one(n: int) -> None:
        user = 200_000_000 + n % chats
        ids.append(await client.send_user_message(bot_id, f"message {n}", chat_id=user, user_id=user))

    for first in range(0, updates, batch):
        await asyncio.gather(*(one(n) for n in range(first, min(updates, first + batch))))
        ahead = started + seconds * (first + batch) / updates - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
    return ids
