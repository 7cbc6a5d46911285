"""The host demo's proofs: a message round trip through the sidecar, spoofed requests refused, a
secret-token rotation with messages flowing, and the interactive chat."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

from tgbot_emulator import EmulatorClient

from .demo_steps import Demo
from .polling import WaitTimeoutError, until
from .story import BOT_ID, BOT_NAME, HELLO, DemoError, ok, say


async def converse(demo: Demo, client: EmulatorClient, text: str, timeout: float = 30) -> dict[str, Any]:
    """Send ``text`` as a user and wait for the bot's reply."""
    update_id = await client.send_user_message(BOT_ID, text)

    async def reply() -> dict[str, Any] | None:
        for message in await client.sent_messages(BOT_ID):
            if message.get("reply_to_update_id") == update_id:
                return message
        return None

    found: dict[str, Any] = await until(f"the reply to update {update_id}", reply, timeout=timeout)
    return found


async def message_round_trip(demo: Demo) -> None:
    async with EmulatorClient(demo.emulator_url) as client:
        reply = await converse(demo, client, HELLO)
    say(f"    user  -> {HELLO!r}   (emulator -> sidecar -> echo bot)")
    say(f"    bot   -> {reply.get('text')!r}   (in the webhook reply, via={reply.get('via')})")
    if reply.get("text") != HELLO:
        raise DemoError(f"unexpected reply {reply}")
    ok("the reply came back through the sidecar")


async def spoofs(demo: Demo) -> None:
    url = f"https://127.0.0.1:{demo.sidecar_port}/webhook"
    token = (demo.secret_folder / "secret-token").read_text()
    update = json.dumps(
        {"update_id": 999_999_001, "message": {"message_id": 1, "date": 0, "chat": {"id": 1}}}
    )
    # (what, source address, secret token sent, extra headers, expected status)
    cases: list[tuple[str, str, str | None, dict[str, str], int]] = [
        ("wrong secret token from an allowed address", "127.0.0.1", "guess", {}, 401),
        ("no secret token", "127.0.0.1", None, {}, 401),
        ("right token, from an address outside the allowed networks", "127.0.0.3", token, {}, 403),
        (
            "X-Forwarded-For: 127.0.0.1 from an untrusted peer (ignored)",
            "127.0.0.3",
            token,
            {"X-Forwarded-For": "127.0.0.1"},
            403,
        ),
        (
            "via the trusted proxy for a client outside the allowed networks",
            "127.0.0.2",
            token,
            {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"},
            403,
        ),
    ]
    for description, source, secret, extra, expected in cases:
        headers = {"Content-Type": "application/json", **extra}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=False)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(url, data=update, headers=headers) as response,
        ):
            status = response.status
        if status != expected:
            raise DemoError(f"{description}: expected {expected}, got {status}")
        ok(f"{description} -> {status}")
    async with EmulatorClient(demo.emulator_url) as client:
        sent_messages = await client.sent_messages(BOT_ID)
    if any(m.get("reply_to_update_id") == 999_999_001 for m in sent_messages):
        raise DemoError("a spoofed update reached the bot")
    ok("none of them reached the bot")


async def rotation(demo: Demo) -> None:
    before = (await demo.bot_object()).get("status", {}).get("secretTokenRotatedAt")
    old_token = (demo.secret_folder / "secret-token").read_text()
    await demo.kubectl(
        "annotate",
        "tgbot",
        BOT_NAME,
        "-n",
        demo.namespace,
        f"tgbot.dev/rotate-secret-token={int(time.time())}",
        "--overwrite",
    )
    say(f"    $ kubectl annotate tgbot echo -n {demo.namespace} tgbot.dev/rotate-secret-token=<now>")
    sent: list[int] = []
    async with EmulatorClient(demo.emulator_url) as client:

        async def rotated() -> bool:
            status = (await demo.bot_object()).get("status", {})
            return bool(status.get("secretTokenRotatedAt")) and status.get("secretTokenRotatedAt") != before

        deadline = time.monotonic() + 90
        while not await rotated():
            if time.monotonic() > deadline:
                raise DemoError("the rotation did not finish within 90 s")
            sent.append(await client.send_user_message(BOT_ID, f"during rotation #{len(sent) + 1}"))
            await asyncio.sleep(0.3)
        await until(
            "the previous token to be retired",
            lambda: _absent(demo.secret_folder / "previous-secret-token"),
            timeout=30,
        )
        for _ in range(3):
            sent.append(await client.send_user_message(BOT_ID, f"after rotation #{len(sent) + 1}"))
        await client.wait_delivered(BOT_ID, sent, timeout=60)
        replies = {m.get("reply_to_update_id") for m in await client.sent_messages(BOT_ID)}
        deliveries = await client.deliveries(BOT_ID)
    new_token = (demo.secret_folder / "secret-token").read_text()
    if new_token == old_token:
        raise DemoError("the secret token did not change")
    missing = [u for u in sent if u not in replies]
    if missing:
        raise DemoError(f"no reply to updates {missing}")
    rejected = [d for d in deliveries if d.get("status") == 401]
    if rejected:
        raise DemoError(f"{len(rejected)} deliveries were refused with 401 during the rotation")
    ok(f"secret token rotated; {len(sent)} messages sent during and after it, all answered, no 401")


async def _absent(path: Path) -> bool:
    return not await asyncio.to_thread(path.exists)


async def read_line(prompt: str) -> str | None:
    """``input()`` in a daemon thread: Ctrl-C or a signal must not wait for the user's Enter."""
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str | None] = loop.create_future()

    def settle(value: str | None) -> None:
        if not line.done():
            line.set_result(value)

    def read() -> None:
        try:
            value: str | None = input(prompt)
        except EOFError:
            value = None
        with contextlib.suppress(RuntimeError):  # the loop may be gone already
            loop.call_soon_threadsafe(settle, value)

    threading.Thread(target=read, daemon=True).start()
    return await line


async def interactive(demo: Demo) -> None:
    say("\n    Type a message for the bot (empty line or Ctrl-D to finish).")
    async with EmulatorClient(demo.emulator_url) as client:
        while True:
            text = await read_line("    you> ")
            if text is None or not text.strip():
                break
            try:
                reply = await converse(demo, client, text)
            except WaitTimeoutError:
                # E.g. /file: the bot answers with sendDocument, which the emulator does not carry out.
                say("    bot> (no reply within 30 s)")
                continue
            say(f"    bot> {reply.get('text')}")
