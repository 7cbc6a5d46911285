"""A tgbot-dev run: start everything, talk to the bot (batch or interactive), stop everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tgbot_emulator import EmulatorClient, EmulatorClientError, EmulatorTimeoutError

from .chat import Chat, Event
from .processes import StartError
from .render import render
from .stack import Stack

#: After the first part of an answer, how long the bot may stay quiet before it counts as done.
QUIET_SECONDS = 0.4
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Plan:
    command: Sequence[str]
    messages: Sequence[str]
    expect_reply: bool
    timeout: float
    startup_timeout: float
    allowed_updates: Sequence[str]
    drain_timeout: float


async def run(plan: Plan, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The exit code: 0 when it went as asked, 1 when not, 128+N after signal N (Ctrl-C: 130)."""
    directory = Path(tempfile.mkdtemp(prefix="tgbot-dev-", dir="/tmp"))  # short: a socket lives here
    stack = Stack(directory)
    received: list[int] = []
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        received.append(signum)
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        # A signal ends whatever is going on, the start included.
        session = asyncio.create_task(_session(plan, stack, out, err))
        stopped = asyncio.create_task(stopping.wait())
        await asyncio.wait({session, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if session.done():
            stopped.cancel()
            return session.result()
        session.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await session
        print("tgbot-dev: stopping", file=err, flush=True)
        return 128 + received[0]
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await stack.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def _session(plan: Plan, stack: Stack, out: TextIO, err: TextIO) -> int:
    interactive = not plan.messages
    try:
        # Batch mode shows the bot's own output (on stderr); a chat keeps it in a file.
        output = None if interactive else sys.stderr.buffer
        await stack.start(plan.command, plan.startup_timeout, plan.drain_timeout, output)
        await stack.set_webhook(plan.allowed_updates)
        async with EmulatorClient(stack.emulator_url) as client:
            chat = Chat(client, stack.bot_id)
            if interactive:
                print(
                    f"Chatting with @{stack.username} (bot log: {stack.log('bot')}). Type a message or a"
                    " /command; a number presses that button; Ctrl-D or Ctrl-C ends.",
                    file=out,
                    flush=True,
                )
                return await _while_the_bot_runs(_interactive(chat, out), stack, err)
            return await _while_the_bot_runs(_batch(chat, plan, out, stack), stack, err)
    except (StartError, EmulatorClientError) as exc:
        print(f"tgbot-dev: {exc}", file=err, flush=True)
        return 1


async def _while_the_bot_runs(talk: Coroutine[Any, Any, int], stack: Stack, err: TextIO) -> int:
    """The talk's exit code, or 1 if the bot exits first."""
    assert stack.bot is not None
    talking = asyncio.create_task(talk)
    bot_exit = asyncio.create_task(stack.bot.process.wait())
    try:
        await asyncio.wait({talking, bot_exit}, return_when=asyncio.FIRST_COMPLETED)
        if talking.done():
            return talking.result()
        print(
            f"tgbot-dev: the bot exited with {bot_exit.result()}:\n{stack.bot.tail()}", file=err, flush=True
        )
        return 1
    finally:
        for task in (talking, bot_exit):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _collect(chat: Chat, first_within: float) -> list[Event]:
    """The bot's answer: events until it has been quiet for a moment (or nothing within the time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + first_within
    found: list[Event] = []
    quiet_since = loop.time()
    while True:
        new = await chat.events()
        now = loop.time()
        if new:
            found.extend(new)
            quiet_since = now
        elif (found and now - quiet_since >= QUIET_SECONDS) or (not found and now >= deadline):
            return found
        await asyncio.sleep(POLL_SECONDS)


async def _delivery_error(chat: Chat) -> str:
    info = await chat.client.webhook(chat.bot_id)
    return str(info.get("last_error_message") or "no error reported yet")


def _sidecar_warnings(stack: Stack, lines: int = 3) -> list[str]:
    """The sidecar's last few WARNING+ lines (why it could not deliver: 404 from the bot...)."""
    try:
        text = stack.log("sidecar").read_text(errors="replace")
    except OSError:
        return []
    found: list[str] = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            details = {
                k: v for k, v in record.items() if k not in ("level", "message", "time", "name", "logger")
            }
            line = f"{record.get('message')} {details}" if details else str(record.get("message"))
            if not found or found[-1] != line:  # a retried update repeats the same line
                found.append(line)
    return found[-lines:]


async def _batch(chat: Chat, plan: Plan, out: TextIO, stack: Stack) -> int:
    failures = 0
    for event in await chat.events():  # anything the bot sent on startup
        print(render(event), file=out, flush=True)
    for text in plan.messages:
        print(f"you: {text}", file=out, flush=True)
        update_id = await chat.send(text)
        try:
            await chat.client.wait_delivered(chat.bot_id, [update_id], timeout=plan.timeout)
        except EmulatorTimeoutError:
            reason = await _delivery_error(chat)
            print(f"  not delivered within {plan.timeout:g} s: {reason}", file=out, flush=True)
            for line in _sidecar_warnings(stack):
                print(f"  sidecar: {line}", file=out, flush=True)
            failures += 1
            continue
        # Delivered means handled (the bot answers after handling); a bot that answers later
        # still gets the whole timeout when an answer is expected.
        events = await _collect(chat, plan.timeout if plan.expect_reply else QUIET_SECONDS)
        for event in events:
            print(render(event), file=out, flush=True)
        if plan.expect_reply and not events:
            print(f"  no answer within {plan.timeout:g} s", file=out, flush=True)
            failures += 1
    return 1 if failures else 0


def _read_lines(queue: asyncio.Queue[str | None], loop: asyncio.AbstractEventLoop) -> None:
    # A daemon thread: a blocked readline must not keep the process alive at exit.
    for line in sys.stdin:
        loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def _watch(chat: Chat, out: TextIO) -> None:
    while True:
        for event in await chat.events():
            print(render(event), file=out, flush=True)
        await asyncio.sleep(POLL_SECONDS * 2)


async def _interactive(chat: Chat, out: TextIO) -> int:
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_lines, args=(lines, loop), daemon=True, name="stdin").start()
    watcher = asyncio.create_task(_watch(chat, out))
    try:
        while (line := await lines.get()) is not None:
            text = line.strip()
            if not text:
                continue
            try:
                if text.isdigit() and chat.buttons:
                    await chat.press(int(text))
                else:
                    # A leading backslash sends the rest as is ("\2" sends "2").
                    await chat.send(text[1:] if text.startswith("\\") else text)
            except (LookupError, EmulatorClientError) as exc:
                print(f"  {exc}", file=out, flush=True)
        return 0
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
