"""Fixtures of the operator's tests: the CRD, the emulator in-process, the operator as a subprocess."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.charts.rbac import service_account_kubeconfig
from tests.support import Cluster
from tgbot_emulator import EmulatorClient, EmulatorConfig, EmulatorServer
from tgbot_operator.kube import SecretView

from .e2e import CRD_PATH, Emulator, OperatorProcess

#: Fast settings for tests: checks every 2 s, token re-read every second, short graces.
FAST_ARGS = [
    "--check-interval",
    "2",
    "--token-check-interval",
    "1",
    "--rotation-propagation-grace",
    "2",
    "--rotation-retire-grace",
    "2",
    "--deletion-timeout",
    "30",
]


@pytest.fixture(scope="session")
def crd_installed(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_PATH))
    cluster.kubectl("wait", "--for=condition=Established", "crd/telegrambots.tgbot.dev", "--timeout=60s")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    config = EmulatorConfig(port=0, allow_local_webhooks=True, retry_cap_seconds=2)
    async with EmulatorServer(config) as server, EmulatorClient(server.url) as client:
        yield Emulator(url=server.url, client=client)


OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture(scope="session")
def chart_kubeconfig(cluster: Cluster, crd_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Credentials of the operator chart's ServiceAccount (cluster-wide RBAC), one release per session.

    The end-to-end tests run the operator with these, not as cluster admin: they prove that the
    chart grants everything the operator needs.
    """
    system = f"tgbot-system-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", system)
    return service_account_kubeconfig(
        cluster, system, "tgbot", directory=tmp_path_factory.mktemp("operator-sa")
    )


@pytest.fixture
def start_operator(
    cluster: Cluster,
    namespace: str,
    crd_installed: None,
    chart_kubeconfig: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorFactory]:
    """Start ``tgbot-operator`` for the test's namespace: ``start_operator(*extra_args, kubeconfig=...)``.

    By default it authenticates as the Helm chart's ServiceAccount, and allows the test's emulator
    (when the test uses one) as a Bot API server: ``allow=[...]`` replaces that list.
    """
    started: list[OperatorProcess] = []

    def start(
        *extra: str,
        kubeconfig: Path | None = None,
        fast: bool = True,
        allow: Sequence[str] | None = None,
    ) -> OperatorProcess:
        if allow is None:
            allow = [request.getfixturevalue("emulator").url] if "emulator" in request.fixturenames else []
        allowed = [arg for url in allow for arg in ("--allow-bot-api-server", url)]
        process = OperatorProcess(
            cluster=cluster,
            namespace=namespace,
            log_path=tmp_path / f"operator-{len(started)}.log",
            args=[*(FAST_ARGS if fast else []), *allowed, *extra],
            kubeconfig=kubeconfig or chart_kubeconfig,
        )
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    # Our finalizer must not keep the namespace from being deleted once no operator runs.
    result = cluster.kubectl("get", "tgbot", "-n", namespace, "-o", "json", check=False)
    if result.returncode == 0:
        for item in json.loads(result.stdout)["items"]:
            cluster.kubectl(
                "patch",
                "tgbot",
                item["metadata"]["name"],
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )


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
