"""Fixtures of the operator's end-to-end tests: the operator as a subprocess against the real API
server, authenticated as the chart's ServiceAccount. The in-process emulator and the CRD come from
tests/conftest.py."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.charts.rbac import service_account_kubeconfig
from tests.support import Cluster, Emulator

from .support import Bots, OperatorProcess

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


@pytest.fixture
def bots(cluster: Cluster, namespace: str, crd_installed: None, emulator: Emulator) -> Bots:
    """``await bots.ready_bot("echo", 1001, webhook={...})``: a TelegramBot made Ready against the
    emulator by the operator the test started (``start_operator``)."""
    return Bots(cluster=cluster, namespace=namespace, emulator=emulator)
