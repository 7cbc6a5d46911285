"""Fixtures for emulator tests: an in-process emulator, its client, a Bot API caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.emulator.helpers import TOKEN, BotApi, Receiver, start_receiver
from tgbot_emulator import BotSpec, EmulatorClient, EmulatorConfig, EmulatorServer


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Every emulator task must be gone once the server has stopped."""
    yield
    await asyncio.sleep(0)
    leaked = [
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task() and not t.done() and t.get_name().startswith("tgbot-emulator")
    ]
    assert not leaked, leaked


@pytest.fixture
def config() -> EmulatorConfig:
    # Short retries and timeouts keep delivery tests fast.
    return EmulatorConfig(
        host="127.0.0.1",
        port=0,
        allow_local_webhooks=True,
        retry_initial_seconds=0.05,
        retry_cap_seconds=0.2,
        delivery_timeout_seconds=2.0,
        # Tests set webhooks back to back; the rate limit has its own tests.
        setwebhook_rate_limit=False,
        bots=[BotSpec(token=TOKEN, username="test_bot")],
    )


@pytest.fixture
async def server(config: EmulatorConfig) -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(config) as running:
        yield running


@pytest.fixture
async def client(server: EmulatorServer) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(server.url) as control:
        yield control


@pytest.fixture
async def api(server: EmulatorServer) -> AsyncIterator[BotApi]:
    async with aiohttp.ClientSession() as session:
        yield BotApi(session, server.url)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await start_receiver()
    yield running
    await running.stop()
