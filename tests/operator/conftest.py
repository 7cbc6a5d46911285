"""Fixtures of the operator's unit tests: a fake Kubernetes (the e2e tests in tests/e2e/operator use
the real API server; the in-process emulator fixture is in tests/conftest.py), and ``rig``: one
worker against the in-process emulator and the fake Kubernetes, on a clock the test moves."""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tgbot_emulator import EmulatorClient, EmulatorConfig, EmulatorServer
from tgbot_operator.deps import Deps
from tgbot_operator.kube import SecretView
from tgbot_operator.metrics import Metrics
from tgbot_operator.settings import OperatorSettings
from tgbot_operator.worker import BotWorker

# --- a fake Kubernetes for the unit tests (the e2e tests use the real API server) -------------


@dataclass
class FakeKube:
    """The operator's few Kubernetes calls (kube.KubeApi) on dicts; checks resourceVersions."""

    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    status_patches: int = 0
    versions: int = 0
    #: As a watching Kube's cache: the epoch is the last Secret version (None: unknown, as polling).
    watching: bool = False

    def put(self, namespace: str, name: str, data: Mapping[str, bytes]) -> None:
        self.versions += 1
        self.secrets[(namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(self.versions)},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }

    def secrets_epoch(self, namespace: str) -> int | None:
        return self.versions if self.watching else None

    async def read_secret(self, namespace: str, name: str) -> SecretView | None:
        raw = self.secrets.get((namespace, name))
        return SecretView.from_dict(raw) if raw is not None else None

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]
        assert (namespace, name) not in self.secrets
        self.versions += 1
        stored = json.loads(json.dumps(dict(body)))
        stored["metadata"]["resourceVersion"] = str(self.versions)
        self.secrets[(namespace, name)] = stored

    async def replace_secret(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]
        current = self.secrets[(namespace, name)]
        assert body["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
        self.versions += 1
        stored = json.loads(json.dumps(dict(body)))
        stored["metadata"]["resourceVersion"] = str(self.versions)
        self.secrets[(namespace, name)] = stored

    async def patch_bot_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self.status_patches += 1
        self.status = _apply(self.status, patch)

    def data(self, name: str) -> dict[str, bytes]:
        raw = self.secrets[("ns", name)]
        return {k: base64.b64decode(v) for k, v in raw["data"].items()}


def _apply(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _apply(result[key], value)
        else:
            result[key] = value
    return result


@pytest.fixture
def fake_kube() -> FakeKube:
    return FakeKube()


# --- one worker, the in-process emulator, the fake Kubernetes, a clock the test moves ----------

TOKEN = "5001:AAFakeTokenForTheWorkerTestsxxxxxxxxxx"
UID = "0b7c1f3e-0000-4000-8000-000000000001"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    worker: BotWorker
    kube: FakeKube
    clock: Clock
    emulator: EmulatorClient
    events: list[tuple[str, str, str]]
    body: dict[str, Any]

    def conditions(self) -> dict[str, dict[str, Any]]:
        return {c["type"]: c for c in self.kube.status.get("conditions", [])}

    async def setwebhooks(self) -> list[dict[str, Any]]:
        return await self.emulator.calls(5001, method="setWebhook", reveal_secrets=True)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    config = EmulatorConfig(port=0, allow_local_webhooks=True, setwebhook_rate_limit=False)
    async with (
        EmulatorServer(config) as server,
        EmulatorClient(server.url) as client,
        aiohttp.ClientSession() as http,
    ):
        await client.add_bot(TOKEN, "worker_bot")
        kube = FakeKube()
        kube.put("ns", "bot-token", {"token": TOKEN.encode()})
        clock = Clock()
        settings = OperatorSettings(
            check_interval=300,
            rotation_propagation_grace=90,
            rotation_retire_grace=120,
            unauthorized_retry_interval=600,
            allow_bot_api_server=[server.url],
        )
        deps = Deps(
            settings=settings, kube=kube, metrics=Metrics(), http=http, clock=clock, rng=random.Random(1)
        )
        body: dict[str, Any] = {
            "metadata": {"name": "bot", "namespace": "ns", "uid": UID, "generation": 1, "annotations": {}},
            "spec": {
                "tokenSecretRef": {"name": "bot-token"},
                "botApiServer": server.url,
                "webhook": {"url": "http://127.0.0.1:9/hook", "maxConnections": 5},
            },
        }
        events: list[tuple[str, str, str]] = []
        worker = BotWorker(
            deps, body=body, logger=logging.getLogger("test"), events=lambda *e: events.append(e)
        )
        yield Rig(worker, kube, clock, client, events, body)
