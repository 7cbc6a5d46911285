"""deletion.finalize against the in-process emulator and the fake Kubernetes: no cluster."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.support import Emulator
from tgbot_operator.botapi import BotApiClient
from tgbot_operator.deletion import Done, RetryIn, finalize
from tgbot_operator.deps import Deps
from tgbot_operator.metrics import Metrics
from tgbot_operator.settings import OperatorSettings
from tgbot_operator.telegram import SetWebhookParams

from .conftest import FakeKube

TOKEN = "5101:AAFakeTokenForTheDeletionTestsxxxxxxxx"
URL = "http://127.0.0.1:9/hook"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STARTED = "2026-01-01T11:59:50Z"  # deletion began 10 s before NOW


@dataclass
class Rig:
    deps: Deps
    emulator: Emulator
    events: list[tuple[str, str, str]]

    def body(self, **spec: Any) -> dict[str, Any]:
        return {
            "metadata": {
                "name": "bot",
                "namespace": "ns",
                "uid": "u1",
                "deletionTimestamp": "2026-01-01T11:59:50Z",
            },
            "spec": {
                "tokenSecretRef": {"name": "bot-token"},
                "botApiServer": self.emulator.url,
                "webhook": {"url": URL},
                **spec,
            },
        }

    async def finalize(self, body: dict[str, Any], retry: int = 0) -> Done | RetryIn:
        return await finalize(
            deps=self.deps,
            body=body,
            events=lambda *e: self.events.append(e),
            logger=logging.getLogger("test"),
            retry=retry,
        )

    async def register(self, url: str) -> None:
        assert self.deps.http is not None
        params = SetWebhookParams(url, "s" * 16, 40, None, False, None, None)
        await BotApiClient(self.deps.http, self.emulator.url, TOKEN).set_webhook(params)

    async def live_url(self) -> str:
        return str((await self.emulator.client.webhook(5101))["url"])


@pytest.fixture
async def rig(emulator: Emulator, fake_kube: FakeKube) -> AsyncIterator[Rig]:
    await emulator.client.add_bot(TOKEN, "doomed_bot")
    fake_kube.put("ns", "bot-token", {"token": TOKEN.encode()})
    settings = OperatorSettings(allow_bot_api_server=[emulator.url], deletion_timeout=60)
    async with aiohttp.ClientSession() as http:
        deps = Deps(
            settings=settings,
            kube=fake_kube,
            metrics=Metrics(),
            http=http,
            clock=lambda: NOW,
            rng=random.Random(1),
        )
        yield Rig(deps, emulator, [])


async def test_our_webhook_is_deleted(rig: Rig) -> None:
    await rig.register(URL)
    assert await rig.finalize(rig.body()) == Done("deleted")
    assert await rig.live_url() == ""
    assert [e[1] for e in rig.events] == ["WebhookDeleted"]


async def test_the_url_status_registered_counts_as_ours(rig: Rig) -> None:
    await rig.register("http://127.0.0.1:9/old")
    body = rig.body() | {"status": {"registration": {"url": "http://127.0.0.1:9/old"}}}
    assert await rig.finalize(body) == Done("deleted")


async def test_a_webhook_that_is_not_ours_is_left_alone(rig: Rig) -> None:
    await rig.register("http://127.0.0.1:9/someone-else")
    assert await rig.finalize(rig.body()) == Done("not ours")
    assert await rig.live_url() == "http://127.0.0.1:9/someone-else"
    assert [e[1] for e in rig.events] == ["WebhookNotOurs"]


async def test_keep_and_an_invalid_spec_leave_it_without_a_call(rig: Rig) -> None:
    await rig.register(URL)
    assert await rig.finalize(rig.body(deletionPolicy="Keep")) == Done("kept")
    assert await rig.finalize(rig.body(webhook={"url": URL, "maxConnections": 0})) == Done("invalid spec")
    assert await rig.live_url() == URL
    assert [e[1] for e in rig.events] == ["WebhookKept", "WebhookLeft"]
    assert await rig.emulator.client.calls(5101, method="deleteWebhook") == []


async def test_a_missing_token_does_not_block(rig: Rig, fake_kube: FakeKube) -> None:
    del fake_kube.secrets[("ns", "bot-token")]
    assert await rig.finalize(rig.body()) == Done("SecretNotFound")
    assert rig.events[-1][1] == "WebhookLeft"


async def test_failures_retry_with_the_backoff_then_give_up_at_the_deadline(rig: Rig) -> None:
    await rig.register(URL)
    await rig.emulator.client.add_fault("500", count=10, method="getWebhookInfo")
    delays = []
    for retry in range(8):
        outcome = await rig.finalize(rig.body(), retry=retry)
        assert isinstance(outcome, RetryIn), outcome
        delays.append(outcome.seconds)
    # 1, 2, 4 ... s, never past the 50 s left before the 60 s deletion timeout.
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 50.0, 50.0]
    rig.deps.clock = lambda: NOW + timedelta(seconds=51)
    assert await rig.finalize(rig.body(), retry=8) == Done("timed out")
    assert rig.events[-1][1] == "DeletionTimedOut"
    assert await rig.live_url() == URL


async def test_flood_control_waits_at_least_as_long_as_telegram_asks(rig: Rig) -> None:
    await rig.register(URL)
    await rig.emulator.client.add_fault("429", count=1, method="getWebhookInfo", retry_after=20)
    outcome = await rig.finalize(rig.body(), retry=0)
    assert isinstance(outcome, RetryIn)
    assert outcome.seconds == 20.0
    assert TOKEN not in outcome.message
