"""The operator chart's namespaced RBAC suffices: the operator runs as its ServiceAccount (every other
end-to-end test uses the chart's cluster-wide RBAC, see conftest.chart_kubeconfig)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.charts.rbac import _kubeconfig_for_token, service_account_kubeconfig, uninstall
from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import (
    Bots,
    eventually,
    get,
    kubectl,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def test_operator_runs_with_the_charts_namespaced_permissions(
    cluster: Cluster,
    namespace: str,
    emulator: Emulator,
    start_operator: OperatorFactory,
    bots: Bots,
    tmp_path: Path,
) -> None:
    # The chart in namespaced mode: a Role in the watched namespace, only kopf's discovery cluster-wide.
    kubeconfig = service_account_kubeconfig(
        cluster, namespace, "tgbot-ns", values={"watchNamespaces": [namespace]}, directory=tmp_path
    )
    try:
        operator = start_operator(kubeconfig=kubeconfig)
        await bots.ready_bot("rbac", 6001)
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


#: What the operator's code calls (docs/operator.md, "Permissions it needs"), and nothing more.
MINIMAL_RULES = [
    {"apiGroups": ["tgbot.dev"], "resources": ["telegrambots"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["tgbot.dev"], "resources": ["telegrambots/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]


async def test_operator_runs_with_only_the_permissions_its_code_calls(
    cluster: Cluster,
    namespace: str,
    emulator: Emulator,
    start_operator: OperatorFactory,
    bots: Bots,
    tmp_path: Path,
) -> None:
    """The least privilege the chart can grant: a full life (register, self-signed certificate,
    rotation, deletion) with exactly MINIMAL_RULES and no Forbidden in the operator's log."""
    name = f"{namespace}-minimal"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": MINIMAL_RULES,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "minimal", "namespace": namespace}],
    }
    await kubectl(cluster, "create", "serviceaccount", "minimal", "-n", namespace)
    await kubectl(
        cluster,
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}),
    )
    try:
        token = (
            await kubectl(cluster, "create", "token", "minimal", "-n", namespace, "--duration=1h")
        ).stdout.strip()
        kubeconfig = tmp_path / "minimal-kubeconfig"
        kubeconfig.write_text(_kubeconfig_for_token(cluster, token, namespace, "minimal"))
        await eventually(
            lambda: kubectl(
                cluster,
                "--kubeconfig",
                str(kubeconfig),
                "auth",
                "can-i",
                "watch",
                "telegrambots.tgbot.dev",
                check=False,
            ),
            lambda r: r.stdout.strip() == "yes",
            timeout=30,
            what="the binding to take effect",
        )
        operator = start_operator(kubeconfig=kubeconfig)
        await bots.ready_bot(
            "min", 6002, webhook={"url": "https://127.0.0.1:9/x", "certificate": {"mode": "SelfSigned"}}
        )
        await kubectl(cluster, "annotate", "-n", namespace, "tgbot", "min", "tgbot.dev/rotate-secret-token=1")
        await eventually(
            lambda: emulator.client.calls(6002, method="setWebhook"),
            lambda c: len(c) == 2,
            timeout=30,
            what="rotation",
        )
        await kubectl(cluster, "delete", "tgbot", "min", "-n", namespace, "--wait=false")
        await eventually(
            lambda: get(cluster, namespace, "tgbot", "min"), lambda b: b is None, timeout=30, what="deletion"
        )
        log = operator.log()
        forbidden = [line for line in log.splitlines() if "forbidden" in line.lower()]
        assert not forbidden, forbidden[:5]
        reasons = {
            e["reason"]
            for e in json.loads(
                (await kubectl(cluster, "get", "events", "-n", namespace, "-o", "json")).stdout
            )["items"]
        }
        assert {"SecretCreated", "WebhookRegistered", "SecretTokenRotated", "WebhookDeleted"} <= reasons
    finally:
        await kubectl(cluster, "delete", "clusterrolebinding", name, "--ignore-not-found", check=False)
        await kubectl(cluster, "delete", "clusterrole", name, "--ignore-not-found", check=False)
