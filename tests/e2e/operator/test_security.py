"""The real operator: a TelegramBot is no way to read Secrets or reach hosts it was not told about."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import (
    apply,
    bot_manifest,
    condition,
    events,
    eventually,
    get,
    kubectl,
    new_token,
    token_secret,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@dataclass
class Listener:
    url: str
    connections: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    """A TCP server that counts every connection (any request of any kind would be one)."""
    info = Listener(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.connections += 1
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    info.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield info


async def test_a_server_not_allowed_gets_nothing_and_the_bot_says_why(
    cluster: Cluster, namespace: str, listener: Listener, start_operator: OperatorFactory
) -> None:
    # What the review reproduced: a "bot token" that is really another Secret's password.
    await kubectl(
        cluster, "create", "secret", "generic", "db-credentials", "-n", namespace,
        "--from-literal=token=123456:AAsuper-secret-database-password-xyz",
    )  # fmt: skip
    start_operator()  # the default allow-list: only https://api.telegram.org
    await apply(cluster, namespace, bot_manifest("steal", listener.url, "db-credentials"))
    bot = await wait_condition(cluster, namespace, "steal", "Ready", "False", reason="BotApiServerNotAllowed")
    assert condition(bot, "TokenValid")["reason"] == "BotApiServerNotAllowed"
    warnings = [e for e in await events(cluster, namespace) if e["reason"] == "BotApiServerNotAllowed"]
    assert warnings
    assert warnings[0]["type"] == "Warning"
    await asyncio.sleep(3)  # several token checks (every second in tests)
    assert listener.connections == 0
    await kubectl(cluster, "delete", "tgbot", "steal", "-n", namespace, "--wait=false")
    await eventually(lambda: get(cluster, namespace, "tgbot", "steal"), lambda b: b is None, what="deleted")
    assert listener.connections == 0
    assert "WebhookLeft" in {e["reason"] for e in await events(cluster, namespace)}


async def test_token_shape_and_secret_type_are_checked_before_any_call(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory
) -> None:
    password = "correct-horse-battery-staple"
    await kubectl(
        cluster, "create", "secret", "generic", "pw", "-n", namespace, f"--from-literal=token={password}"
    )
    token = new_token(8001)
    await emulator.client.add_bot(token, "typed_bot")
    docker = json.dumps({"auths": {"r.example": {"auth": token}}})
    await kubectl(
        cluster, "create", "secret", "generic", "reg", "-n", namespace,
        "--type=kubernetes.io/dockerconfigjson",
        f"--from-literal=.dockerconfigjson={docker}", f"--from-literal=token={token}",
    )  # fmt: skip
    operator = start_operator()
    await apply(
        cluster,
        namespace,
        bot_manifest("shape", emulator.url, "pw"),
        bot_manifest("typed", emulator.url, "reg"),
    )
    shape = await wait_condition(cluster, namespace, "shape", "TokenValid", "False", reason="TokenMalformed")
    typed = await wait_condition(
        cluster, namespace, "typed", "TokenValid", "False", reason="SecretTypeNotAllowed"
    )
    assert "kubernetes.io/dockerconfigjson" in condition(typed, "TokenValid")["message"]
    assert condition(shape, "Ready")["reason"] == "TokenMalformed"
    reasons = {e["reason"] for e in await events(cluster, namespace) if e["type"] == "Warning"}
    assert {"TokenMalformed", "SecretTypeNotAllowed"} <= reasons
    assert await emulator.client.calls(8001) == []
    everything = operator.log() + json.dumps(await events(cluster, namespace)) + json.dumps([shape, typed])
    assert password not in everything
    # Fixed: an Opaque Secret with a real token, and the bot comes up.
    await apply(cluster, namespace, token_secret("typed-token", token))
    await kubectl(
        cluster, "patch", "tgbot", "typed", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"tokenSecretRef":{"name":"typed-token"}}}',
    )  # fmt: skip
    await wait_condition(cluster, namespace, "typed")
