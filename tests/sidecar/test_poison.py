"""Poison updates, delivered by the emulator with its retries: the chat moves on, nothing is lost."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.emulator.helpers import BOT_ID
from tests.emulator.helpers import TOKEN as BOT_TOKEN
from tgbot_emulator import BotSpec, EmulatorClient, EmulatorConfig, EmulatorServer
from tgbot_sidecar import metrics as m
from tgbot_sidecar.cli import load_settings
from tgbot_sidecar.poison import DeliveryAttempts

from .conftest import TOKEN, VIRTUAL_TIME, FakeUpstream, MakeSidecar, Running


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorClient]:
    config = EmulatorConfig(
        host="127.0.0.1",
        port=0,
        allow_local_webhooks=True,
        retry_initial_seconds=0.05,
        retry_cap_seconds=0.2,
        delivery_timeout_seconds=5.0,
        setwebhook_rate_limit=False,
        bots=[BotSpec(token=BOT_TOKEN, username="test_bot")],
    )
    async with EmulatorServer(config) as server, EmulatorClient(server.url) as client:
        yield client


async def set_webhook(emulator: EmulatorClient, running: Running) -> None:
    import aiohttp

    url = f"{emulator.base_url}/bot{BOT_TOKEN}/setWebhook"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"url": running.url, "secret_token": TOKEN}) as response,
    ):
        assert response.status == 200, await response.text()


def fail_on(text: str, status: int = 500) -> Any:
    async def handler(request: web.Request) -> web.Response:
        update = json.loads(await request.read())
        if update.get("message", {}).get("text") == text:
            return web.Response(status=status, text="handler failed")
        return web.json_response({})

    return handler


async def attempts_of(emulator: EmulatorClient, update_id: int) -> list[dict[str, Any]]:
    return [d for d in await emulator.deliveries(BOT_ID) if d["update_id"] == update_id]


@VIRTUAL_TIME
async def test_a_poison_update_is_dead_lettered_and_the_chat_moves_on(
    emulator: EmulatorClient,
    fake_upstream: FakeUpstream,
    make_sidecar: MakeSidecar,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    letters = tmp_path / "dead-letters.jsonl"
    fake_upstream.handler = fail_on("poison")
    running = await make_sidecar(max_delivery_attempts=3, dead_letter_file=letters)
    await set_webhook(emulator, running)
    first = await emulator.send_user_message(BOT_ID, "hello", user_id=7)
    await emulator.wait_delivered(BOT_ID, [first], timeout=10)
    with caplog.at_level(logging.ERROR, logger="tgbot_sidecar"):
        poison = await emulator.send_user_message(BOT_ID, "poison", user_id=7)
        after = await emulator.send_user_message(BOT_ID, "next message", user_id=7)
        result = await emulator.wait_delivered(BOT_ID, [poison, after], timeout=15)
    assert sorted(result["delivered"]) == sorted([poison, after])
    texts = [json.loads(body)["message"]["text"] for body in fake_upstream.bodies]
    # The handler ran three times, then the next message of the same chat arrived.
    assert texts == ["hello", "poison", "poison", "poison", "next message"]
    statuses = [a["status"] for a in await attempts_of(emulator, poison)]
    assert statuses == [502, 502, 200]
    [line] = letters.read_text().splitlines()
    record = json.loads(line)
    assert record["update_id"] == poison
    assert record["attempts"] == 3
    assert record["reason"] == "status_5xx"
    assert record["update"]["message"]["text"] == "poison"
    assert record["time"].endswith("+00:00")
    assert TOKEN not in line
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [(getattr(r, "update_id", None), getattr(r, "reason", None)) for r in errors] == [
        (poison, "status_5xx")
    ]
    assert "tgbot_sidecar_dead_letters_total 1.0" in await running.metrics()
    assert letters.stat().st_mode & 0o777 == 0o600


@VIRTUAL_TIME
async def test_no_dead_letters_while_the_dispatcher_is_down(
    emulator: EmulatorClient, make_sidecar: MakeSidecar, bot_socket: Path, tmp_path: Path
):
    letters = tmp_path / "dead-letters.jsonl"
    running = await make_sidecar(max_delivery_attempts=2, dead_letter_file=letters)
    await set_webhook(emulator, running)
    ids = [await emulator.send_user_message(BOT_ID, f"m{i}", user_id=10 + i) for i in range(3)]
    for update_id in ids:
        async with asyncio.timeout(15):
            while len(await attempts_of(emulator, update_id)) < 4:  # twice the limit
                await asyncio.sleep(0.05)
    assert not letters.exists()
    assert "tgbot_sidecar_dead_letters_total 0.0" in await running.metrics()
    # Nothing was lost: once the bot is up, every update arrives.
    bot = FakeUpstream(bot_socket)
    await bot.start()
    try:
        result = await emulator.wait_delivered(BOT_ID, ids, timeout=15)
        assert sorted(result["delivered"]) == sorted(ids)
        assert sorted(json.loads(b)["update_id"] for b in bot.bodies) == sorted(ids)
    finally:
        await bot.stop()


@VIRTUAL_TIME
async def test_no_dead_letters_when_every_update_fails(
    emulator: EmulatorClient, fake_upstream: FakeUpstream, make_sidecar: MakeSidecar, tmp_path: Path
):
    """A bot failing every update (its database is down) in several chats: an outage, not poison."""
    letters = tmp_path / "dead-letters.jsonl"

    async def always_fail(request: web.Request) -> web.Response:
        return web.Response(status=500)

    fake_upstream.handler = always_fail
    running = await make_sidecar(max_delivery_attempts=2, dead_letter_file=letters)
    await set_webhook(emulator, running)
    ids = [await emulator.send_user_message(BOT_ID, f"m{i}", user_id=20 + i) for i in range(3)]
    for update_id in ids:
        async with asyncio.timeout(15):
            while len(await attempts_of(emulator, update_id)) < 5:
                await asyncio.sleep(0.05)
    assert not letters.exists()
    fake_upstream.handler = None
    result = await emulator.wait_delivered(BOT_ID, ids, timeout=15)
    assert sorted(result["delivered"]) == sorted(ids)


async def test_zero_never_gives_up(fake_upstream: FakeUpstream, make_sidecar: MakeSidecar):
    fake_upstream.handler = fail_on("poison")
    running = await make_sidecar(max_delivery_attempts=0)
    body = json.dumps({"update_id": 5, "message": {"text": "poison"}}).encode()
    for _ in range(10):
        status, _, _ = await running.post(body)
        assert status == 502
    assert "tgbot_sidecar_dead_letters_total 0.0" in await running.metrics()


async def test_an_unwritable_dead_letter_file_makes_telegram_retry(
    fake_upstream: FakeUpstream, make_sidecar: MakeSidecar, tmp_path: Path
):
    fake_upstream.handler = fail_on("poison")
    running = await make_sidecar(max_delivery_attempts=1, dead_letter_file=tmp_path / "missing" / "x.jsonl")
    body = json.dumps({"update_id": 6, "message": {"text": "poison"}}).encode()
    status, _, _ = await running.post(body)
    assert status == 502
    assert "tgbot_sidecar_dead_letters_total 0.0" in await running.metrics()


def test_unreachable_and_4xx_failures_are_never_counted():
    attempts = DeliveryAttempts(limit=2)
    for now in range(10):
        assert attempts.failed(1, m.UPSTREAM_UNAVAILABLE, now) == 0
        assert attempts.failed(1, m.UPSTREAM_4XX, now) == 0
    assert attempts.failed(1, m.UPSTREAM_TIMEOUT, 10) == 0
    assert attempts.failed(1, m.UPSTREAM_RESET, 11) == 2


def test_another_failing_update_pauses_counting_until_it_succeeds_or_goes_stale():
    attempts = DeliveryAttempts(limit=2, horizon=100)
    assert attempts.failed(1, m.UPSTREAM_5XX, 0) == 0
    assert attempts.failed(2, m.UPSTREAM_UNAVAILABLE, 1) == 0
    assert attempts.failed(1, m.UPSTREAM_5XX, 2) == 0  # 2 failed meanwhile: not counted
    attempts.succeeded(2)
    assert attempts.failed(1, m.UPSTREAM_5XX, 3) == 2
    assert attempts.failed(3, m.UPSTREAM_5XX, 4) == 0
    assert attempts.failed(4, m.UPSTREAM_5XX, 5) == 0
    assert attempts.failed(3, m.UPSTREAM_5XX, 200) == 2  # 4's failure is stale by now


def test_memory_is_bounded():
    attempts = DeliveryAttempts(limit=5, horizon=10, max_entries=3)
    for update_id in range(100):
        attempts.failed(update_id, m.UPSTREAM_5XX, update_id / 100)
    assert len(attempts) == 3
    attempts.prune(50)
    assert len(attempts) == 0


async def test_a_real_aiogram_handler_that_always_fails(
    emulator: EmulatorClient, make_sidecar: MakeSidecar, bot_socket: Path, tmp_path: Path
):
    """aiogram with handle_in_background=False: the failing update is given up, the next is answered."""
    from aiogram import Bot, Dispatcher, F, Router
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    from tgbot_aiogram import BotEnvironment, serve

    router = Router()
    runs: list[str] = []

    @router.message(F.text == "poison")
    async def broken(message: Message) -> None:
        runs.append("poison")
        raise RuntimeError("this handler always fails")

    @router.message()
    async def echo(message: Message) -> Any:
        runs.append(message.text or "")
        return message.answer(f"echo: {message.text}")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    session = AiohttpSession(api=TelegramAPIServer.from_base(emulator.base_url))
    bot = Bot(BOT_TOKEN, session=session)
    stop = asyncio.Event()
    environment = BotEnvironment(socket=str(bot_socket))
    serving = asyncio.create_task(serve(dispatcher, bot, environment=environment, stop=stop))
    async with asyncio.timeout(10):
        while not bot_socket.exists():
            await asyncio.sleep(0.01)
    letters = tmp_path / "dead-letters.jsonl"
    try:
        running = await make_sidecar(max_delivery_attempts=2, dead_letter_file=letters)
        await set_webhook(emulator, running)
        poison = await emulator.send_user_message(BOT_ID, "poison", user_id=9)
        after = await emulator.send_user_message(BOT_ID, "still there?", user_id=9)
        await emulator.wait_delivered(BOT_ID, [poison, after], timeout=15)
        async with asyncio.timeout(10):
            while not [s for s in await emulator.sent_messages(BOT_ID) if "echo" in str(s)]:
                await asyncio.sleep(0.05)
        sent = await emulator.sent_messages(BOT_ID)
        assert [s["text"] for s in sent] == ["echo: still there?"]
        assert runs == ["poison", "poison", "still there?"]
        [record] = [json.loads(line) for line in letters.read_text().splitlines()]
        assert (record["update_id"], record["attempts"]) == (poison, 2)
    finally:
        stop.set()
        await serving  # closes the bot's session too


def test_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    required = ["--secret-token-file", str(tmp_path / "t"), "--upstream", "http://bot/webhook"]
    defaults = load_settings(required)
    assert (defaults.max_delivery_attempts, defaults.dead_letter_file) == (5, None)
    monkeypatch.setenv("TGBOT_SIDECAR_MAX_DELIVERY_ATTEMPTS", "0")
    monkeypatch.setenv("TGBOT_SIDECAR_DEAD_LETTER_FILE", "/var/lib/tgbot/dead-letters.jsonl")
    from_env = load_settings(required)
    assert from_env.max_delivery_attempts == 0
    assert from_env.dead_letter_file == Path("/var/lib/tgbot/dead-letters.jsonl")
    assert load_settings([*required, "--max-delivery-attempts", "7"]).max_delivery_attempts == 7
    with pytest.raises(SystemExit) as exited:
        load_settings([*required, "--max-delivery-attempts", "-1"])
    assert exited.value.code == 2
