"""Fixtures of the operator's unit tests: a fake Kubernetes (the e2e tests in tests/e2e/operator use
the real API server; the in-process emulator fixture is in tests/conftest.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tgbot_operator.kube import SecretView

# --- a fake Kubernetes for the unit tests (the e2e tests use the real API server) -------------


@dataclass
class FakeKube:
    """The operator's few Kubernetes calls (kube.KubeApi) on dicts; checks resourceVersions."""

    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    status_patches: int = 0
    versions: int = 0

    def put(self, namespace: str, name: str, data: Mapping[str, bytes]) -> None:
        self.versions += 1
        self.secrets[(namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": str(self.versions)},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }

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
