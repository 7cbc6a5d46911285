"""High availability through kopf peering, as the chart sets it up with replicaCount > 1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.charts.rbac import service_account_kubeconfig, uninstall
from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import Bots, eventually, kubectl

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"


def active(log: str) -> bool:
    """kopf starts paused; the peer that resumed last (and did not pause since) is the active one."""
    return log.rfind(RESUMED) > log.rfind(PAUSED)


async def test_two_replicas_one_active(
    cluster: Cluster,
    namespace: str,
    emulator: Emulator,
    start_operator: OperatorFactory,
    bots: Bots,
    tmp_path: Path,
) -> None:
    have_crds = cluster.kubectl("get", "crd", "kopfpeerings.kopf.dev", check=False).returncode == 0
    kubeconfig = service_account_kubeconfig(
        cluster,
        namespace,
        "tgbot-ha",
        values={
            "watchNamespaces": [namespace],
            "replicaCount": 2,
            "peering": {"installCRDs": not have_crds},
        },
        directory=tmp_path,
    )
    try:
        peering = (
            (await kubectl(cluster, "get", "kopfpeerings.kopf.dev", "-n", namespace, "-o", "name"))
            .stdout.split("/")[-1]
            .strip()
        )
        assert peering, "the chart did not create the KopfPeering object"
        # Two replicas with the same flags, as a Deployment runs them: only the priority differs,
        # drawn per process.
        first = start_operator("--peering", peering, kubeconfig=kubeconfig)
        second = start_operator("--peering", peering, kubeconfig=kubeconfig)
        await eventually(
            lambda: asyncio.sleep(0, [first.log(), second.log()]),
            lambda logs: sum(active(log) for log in logs) == 1,
            timeout=60,
            what="exactly one replica to be active",
        )
        await bots.ready_bot("ha", 7001)
        await asyncio.sleep(3)  # a second, unpaused replica would register too within this time
        assert len(await emulator.client.calls(7001, method="setWebhook")) == 1
        assert sum(active(log) for log in (first.log(), second.log())) == 1
    finally:
        uninstall(cluster, namespace, "tgbot-ha")
