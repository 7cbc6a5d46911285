"""The permissions listed in docs/operator.md suffice: the operator runs as a ServiceAccount with them."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

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

#: Namespaced permissions (a Role in each watched namespace), as in docs/operator.md.
NAMESPACED_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["tgbot.dev"],
        "resources": ["telegrambots"],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {"apiGroups": ["tgbot.dev"], "resources": ["telegrambots/status"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update", "patch"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
#: Cluster-wide permissions kopf wants for discovering resources.
CLUSTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]


def service_account_kubeconfig(cluster: Cluster, token: str, path: Path) -> Path:
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    server = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "operator"}}],
                "current-context": "c",
            }
        )
    )
    return path


async def test_operator_runs_with_the_documented_permissions(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, tmp_path: Path
) -> None:
    suffix = secrets.token_hex(3)
    cluster_role = f"tgbot-operator-test-{suffix}"
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "tgbot-operator", "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tgbot-operator", "namespace": namespace},
            "rules": NAMESPACED_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "tgbot-operator", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tgbot-operator"},
            "subjects": [{"kind": "ServiceAccount", "name": "tgbot-operator", "namespace": namespace}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": cluster_role},
            "rules": CLUSTER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": "tgbot-operator", "namespace": namespace}],
        },
    ]
    await kubectl(cluster, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        token = (await kubectl(cluster, "create", "token", "tgbot-operator", "-n", namespace)).stdout.strip()
        kubeconfig = service_account_kubeconfig(cluster, token, tmp_path / "sa-kubeconfig")
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
    finally:
        await kubectl(cluster, "delete", "clusterrole,clusterrolebinding", cluster_role, check=False)
