"""The operator chart's namespaced RBAC suffices: the operator runs as its ServiceAccount (every other
end-to-end test uses the chart's cluster-wide RBAC, see conftest.chart_kubeconfig)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.charts.rbac import service_account_kubeconfig, uninstall
from tests.support import Cluster

from .conftest import OperatorFactory
from .e2e import (
    Emulator,
    apply,
    bot_manifest,
    eventually,
    get,
    kubectl,
    new_token,
    token_secret,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_operator_runs_with_the_charts_namespaced_permissions(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, tmp_path: Path
) -> None:
    # The chart in namespaced mode: a Role in the watched namespace, only kopf's discovery cluster-wide.
    kubeconfig = service_account_kubeconfig(
        cluster, namespace, "tgbot-ns", values={"watchNamespaces": [namespace]}, directory=tmp_path
    )
    try:
        bot_token = new_token(6001)
        await emulator.client.add_bot(bot_token, "rbac_bot")
        operator = start_operator(kubeconfig=kubeconfig)
        await apply(
            cluster,
            namespace,
            token_secret("rbac-token", bot_token),
            bot_manifest("rbac", emulator.url, "rbac-token"),
        )
        await wait_condition(cluster, namespace, "rbac")
        await kubectl(
            cluster, "annotate", "-n", namespace, "tgbot", "rbac", "tgbot.dev/rotate-secret-token=1"
        )
        await eventually(
            lambda: emulator.client.calls(6001, method="setWebhook"),
            lambda c: len(c) == 2,
            timeout=30,
            what="rotation",
        )
        await kubectl(cluster, "delete", "tgbot", "rbac", "-n", namespace, "--wait=false")
        await eventually(
            lambda: get(cluster, namespace, "tgbot", "rbac"), lambda b: b is None, timeout=30, what="deletion"
        )
        assert (await emulator.client.webhook(6001))["url"] == ""
        log = operator.log()
        forbidden = [line for line in log.splitlines() if "Forbidden" in line or "forbidden" in line]
        assert not forbidden, forbidden[:5]
        events = json.loads((await kubectl(cluster, "get", "events", "-n", namespace, "-o", "json")).stdout)[
            "items"
        ]
        assert {"WebhookRegistered", "WebhookDeleted"} <= {e["reason"] for e in events}
        # And nothing beyond it: the chart's account cannot read other namespaces' Secrets.
        other = await kubectl(
            cluster, "--kubeconfig", str(kubeconfig), "get", "secrets", "-n", "default", check=False
        )
        assert other.returncode != 0
        assert "forbidden" in other.stderr.lower(), other.stderr
    finally:
        uninstall(cluster, namespace, "tgbot-ns")
