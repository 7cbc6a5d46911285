"""A TelegramBot is no way to read Secrets or reach hosts: allow-list, token shape, Secret type.

The worker runs against an in-memory Kubernetes and a TCP server that counts every connection
made to it: "no request of any kind" means zero connections, not just zero Bot API calls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tgbot_operator.deletion import Done, finalize
from tgbot_operator.deps import Deps
from tgbot_operator.metrics import Metrics
from tgbot_operator.settings import OperatorSettings
from tgbot_operator.worker import BotWorker

from .conftest import UID, Clock, FakeKube

TOKEN = "5002:AAFakeTokenForTheSecurityTestsxxxxxxxx"


@dataclass
class CountingServer:
    url: str
    connections: int = 0
    received: bytes = b""


@pytest.fixture
async def counting_server() -> AsyncIterator[CountingServer]:
    server_info = CountingServer(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_info.connections += 1
        with contextlib.suppress(TimeoutError):
            server_info.received += await asyncio.wait_for(reader.read(65536), 1.0)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 37\r\n\r\n{"ok":true,"result":{"id":5002}}    ')
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server_info.url = f"http://127.0.0.1:{port}"
    async with server:
        yield server_info


@dataclass
class Rig:
    worker: BotWorker
    kube: FakeKube
    deps: Deps
    events: list[tuple[str, str, str]]
    body: dict[str, Any]

    def conditions(self) -> dict[str, dict[str, Any]]:
        return {c["type"]: c for c in self.kube.status.get("conditions", [])}


@pytest.fixture
async def make_rig() -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as http:

        def make(server: str, *, allow: list[str], secret: dict[str, Any] | None = None) -> Rig:
            kube = FakeKube()
            kube.put("ns", "bot-token", {"token": TOKEN.encode()})
            if secret is not None:
                kube.secrets[("ns", "bot-token")] = secret
            settings = OperatorSettings(allow_bot_api_server=allow)
            deps = Deps(
                settings=settings,
                kube=kube,
                metrics=Metrics(),
                http=http,
                clock=Clock(),
                rng=random.Random(1),
            )
            body: dict[str, Any] = {
                "metadata": {"name": "bot", "namespace": "ns", "uid": UID, "generation": 1},
                "spec": {
                    "tokenSecretRef": {"name": "bot-token"},
                    "botApiServer": server,
                    "webhook": {"url": "http://127.0.0.1:9/hook"},
                },
            }
            events: list[tuple[str, str, str]] = []
            worker = BotWorker(
                deps, body=body, logger=logging.getLogger("test"), events=lambda *e: events.append(e)
            )
            return Rig(worker, kube, deps, events, body)

        yield make


async def test_a_server_not_on_the_allow_list_gets_no_request(
    counting_server: CountingServer, make_rig: Any
) -> None:
    rig = make_rig(counting_server.url, allow=[])
    for _ in range(3):
        await rig.worker.run_pass()
        rig.deps.clock.advance(60)
    conditions = rig.conditions()
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "BotApiServerNotAllowed"
    assert conditions["TokenValid"]["reason"] == "BotApiServerNotAllowed"
    assert "--allow-bot-api-server" in conditions["Ready"]["message"]
    assert [(e[0], e[1]) for e in rig.events] == [("Warning", "BotApiServerNotAllowed")]
    assert counting_server.connections == 0
    # Deleting it sends nothing either, and does not block.
    outcome = await finalize(
        deps=rig.deps,
        body=rig.body,
        events=lambda *e: rig.events.append(e),
        logger=rig.worker.logger,
        retry=0,
    )
    assert outcome == Done("BotApiServerNotAllowed")
    assert rig.events[-1][1] == "WebhookLeft"
    assert counting_server.connections == 0


async def test_the_same_server_once_allowed_is_called(counting_server: CountingServer, make_rig: Any) -> None:
    # The control: the counting server does see the worker when the operator allows it.
    rig = make_rig(counting_server.url + "/", allow=[counting_server.url.upper().replace("HTTP", "http")])
    await rig.worker.run_pass()
    assert counting_server.connections >= 1
    assert b"/getMe" in counting_server.received


async def test_the_http_variant_of_an_allowed_https_server_is_refused(
    counting_server: CountingServer, make_rig: Any
) -> None:
    rig = make_rig(counting_server.url, allow=[counting_server.url.replace("http://", "https://")])
    await rig.worker.run_pass()
    assert rig.conditions()["Ready"]["reason"] == "BotApiServerNotAllowed"
    assert counting_server.connections == 0


def secret(type_: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {
        "type": type_,
        "metadata": {"name": "bot-token", "namespace": "ns", "resourceVersion": "1"},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


SERVICE_ACCOUNT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "value",
    [
        b"db-password-hunter2",
        SERVICE_ACCOUNT_TOKEN.encode(),
        b"123456:short",
        b"abc:AAFakeTokenForTheSecurityTestsxxxxxxxx",
        b"5002:AAFake/TokenForTheSecurityTestsxxxxxx",
        b"5002:AAFake TokenForTheSecurityTestsxxxxxx",
        b"5002:AAFakeTokenForTheSecurityTestsxxxxxxxx\nsecond line",
        b":AAFakeTokenForTheSecurityTestsxxxxxxxx",
    ],
)
async def test_a_malformed_token_is_never_sent_nor_shown(
    value: bytes, counting_server: CountingServer, make_rig: Any
) -> None:
    rig = make_rig(
        counting_server.url, allow=[counting_server.url], secret=secret("Opaque", {"token": value})
    )
    await rig.worker.run_pass()
    token_valid = rig.conditions()["TokenValid"]
    assert (token_valid["status"], token_valid["reason"]) == ("False", "TokenMalformed")
    assert rig.conditions()["Ready"]["reason"] == "TokenMalformed"
    assert [(e[0], e[1]) for e in rig.events] == [("Warning", "TokenMalformed")]
    assert counting_server.connections == 0
    shown = repr(rig.kube.status) + repr(rig.events)
    for part in value.split(b":") + value.split(b"."):
        if len(part) >= 6:
            assert part.decode(errors="replace") not in shown


@pytest.mark.parametrize(
    "type_",
    [
        "kubernetes.io/service-account-token",
        "kubernetes.io/dockerconfigjson",
        "kubernetes.io/tls",
        "kubernetes.io/basic-auth",
        "bootstrap.kubernetes.io/token",
        "example.com/custom",
    ],
)
async def test_only_opaque_secrets_are_read_as_token_secrets(
    type_: str, counting_server: CountingServer, make_rig: Any
) -> None:
    # Even a value shaped like a bot token: a Secret of another type is someone else's credential.
    rig = make_rig(
        counting_server.url, allow=[counting_server.url], secret=secret(type_, {"token": TOKEN.encode()})
    )
    await rig.worker.run_pass()
    token_valid = rig.conditions()["TokenValid"]
    assert (token_valid["status"], token_valid["reason"]) == ("False", "SecretTypeNotAllowed")
    assert type_ in token_valid["message"]
    assert [(e[0], e[1]) for e in rig.events] == [("Warning", "SecretTypeNotAllowed")]
    assert counting_server.connections == 0
    outcome = await finalize(
        deps=rig.deps,
        body=rig.body,
        events=lambda *e: rig.events.append(e),
        logger=rig.worker.logger,
        retry=0,
    )
    assert outcome == Done("SecretTypeNotAllowed")
    assert counting_server.connections == 0


async def test_the_warning_is_posted_once_and_again_after_a_fix_and_relapse(
    counting_server: CountingServer, make_rig: Any
) -> None:
    rig = make_rig(counting_server.url, allow=[counting_server.url], secret=secret("Opaque", {"token": b"x"}))
    for _ in range(3):
        await rig.worker.run_pass()
    assert [e[1] for e in rig.events] == ["TokenMalformed"]
    rig.kube.secrets[("ns", "bot-token")] = secret("kubernetes.io/tls", {"token": b"x"})
    await rig.worker.run_pass()
    assert [e[1] for e in rig.events] == ["TokenMalformed", "SecretTypeNotAllowed"]
