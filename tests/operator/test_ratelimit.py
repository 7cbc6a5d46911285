"""--bot-api-rate-limit: one token bucket per Bot API server, shared by all its bots."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import aiohttp
import pytest

from tgbot_emulator import EmulatorClient, EmulatorConfig, EmulatorServer
from tgbot_operator.cli import settings_from_args
from tgbot_operator.deps import Deps
from tgbot_operator.metrics import Metrics
from tgbot_operator.ratelimit import RateLimiter
from tgbot_operator.settings import OperatorSettings

from .conftest import FakeKube


def test_a_burst_of_one_second_then_one_call_per_slot() -> None:
    limiter = RateLimiter(10)
    delays = [limiter.reserve(0.0) for _ in range(13)]
    assert delays[:10] == [0.0] * 10
    assert delays[10:] == pytest.approx([0.1, 0.2, 0.3])
    # Quiet for a while: the bucket fills up again, not beyond one second's worth.
    later = [limiter.reserve(100.0) for _ in range(11)]
    assert later[:10] == [0.0] * 10
    assert later[10] == pytest.approx(0.1)
    slow = RateLimiter(0.5)  # one call every 2 s, never two at once
    assert [slow.reserve(0.0) for _ in range(3)] == [0.0, 2.0, 4.0]


@pytest.mark.looptime
async def test_calls_of_many_bots_are_paced_in_the_order_they_came() -> None:
    limiter = RateLimiter(10)
    loop = asyncio.get_running_loop()
    start = loop.time()
    done: list[tuple[int, float]] = []

    async def call(n: int) -> None:
        await limiter.acquire()
        done.append((n, loop.time() - start))

    await asyncio.gather(*(call(n) for n in range(50)))
    assert [n for n, _ in done] == list(range(50))  # first come, first served
    times = [t for _, t in done]
    assert times[:10] == [0.0] * 10
    assert times[-1] == pytest.approx(4.0)  # 40 calls beyond the burst at 10 per second
    for earlier, later in itertools.pairwise(times[10:]):
        assert later - earlier == pytest.approx(0.1)


def test_the_flag_and_its_default() -> None:
    assert settings_from_args([]).bot_api_rate_limit is None
    assert settings_from_args(["--bot-api-rate-limit", "30"]).bot_api_rate_limit == 30.0
    assert settings_from_args(["--bot-api-rate-limit", "0.5"]).bot_api_rate_limit == 0.5
    with pytest.raises(ValueError, match="greater than 0"):
        OperatorSettings(bot_api_rate_limit=0)


def deps_with(rate: float | None, *servers: str) -> Deps:
    settings = OperatorSettings(bot_api_rate_limit=rate, allow_bot_api_server=list(servers))
    return Deps(settings=settings, kube=FakeKube(), metrics=Metrics(), rng=random.Random(1))


def test_one_limiter_per_server_whatever_its_spelling() -> None:
    deps = deps_with(5, "http://bot-api.example:8081", "https://other.example")
    a = deps.rate_limiter("http://bot-api.example:8081")
    assert a is not None
    assert deps.rate_limiter("HTTP://Bot-API.example:8081/") is a
    assert deps.rate_limiter("https://other.example") is not a
    assert deps_with(None).rate_limiter("https://api.telegram.org") is None


async def test_every_bot_api_call_to_a_server_is_paced() -> None:
    tokens = [f"{7000 + n}:AAPacedTokenPacedTokenPacedToken{n:03d}x" for n in range(3)]
    config = EmulatorConfig(port=0, allow_local_webhooks=True, setwebhook_rate_limit=False)
    async with (
        EmulatorServer(config) as server,
        EmulatorClient(server.url) as client,
        aiohttp.ClientSession() as http,
    ):
        for n, token in enumerate(tokens):
            await client.add_bot(token, f"paced_{n}_bot")
        deps = deps_with(20, server.url)
        deps.http = http
        started, started_wall = time.monotonic(), time.time()
        await asyncio.gather(
            *(deps.bot_api(server.url, token).get_webhook_info() for token in tokens for _ in range(10)),
            *(deps.bot_api(server.url, token).get_me() for token in tokens for _ in range(4)),
        )
        elapsed = time.monotonic() - started
        # 42 calls at 20 per second, a burst of 20 at once: the last one goes after ~1.1 s.
        assert elapsed >= 1.0
        calls = [c for n in range(3) for c in await client.calls(7000 + n)]
        ats = sorted(c["at"] for c in calls)
        assert len(ats) == 42
        # The last call cannot reach the server before the limiter lets it go (~1.05 s after the
        # start); load only delays calls. (Arrival spread is no measure: under load the first
        # burst itself arrives late.)
        assert ats[-1] - started_wall >= 1.0
        waited = deps.metrics.rate_limit_wait._value.get()
        assert waited > 0
