"""The operator's ServiceAccount can do what the operator does, and nothing else.

Checked with a token of the chart's ServiceAccount against the real API server (RBAC on):
``kubectl auth can-i`` for the verbs, and real calls for the operator's own requests.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from tests.charts.chartlib import Releases
from tests.charts.rbac import as_kubeconfig, operator_service_account, service_account_kubeconfig
from tests.support import Cluster

pytestmark = pytest.mark.cluster

ALLOWED_IN_NAMESPACE = [
    ("get", "telegrambots.tgbot.dev"),
    ("list", "telegrambots.tgbot.dev"),
    ("watch", "telegrambots.tgbot.dev"),
    ("patch", "telegrambots.tgbot.dev"),
    ("get", "telegrambots.tgbot.dev/status"),
    ("patch", "telegrambots.tgbot.dev/status"),
    ("update", "telegrambots.tgbot.dev/status"),
    ("get", "secrets"),
    ("create", "secrets"),
    ("patch", "secrets"),
    ("update", "secrets"),
    ("create", "events"),
    ("patch", "events"),
    ("create", "events.events.k8s.io"),
    ("patch", "events.events.k8s.io"),
]
DENIED_IN_NAMESPACE = [
    ("list", "secrets"),
    ("watch", "secrets"),
    ("delete", "secrets"),
    ("create", "telegrambots.tgbot.dev"),
    ("delete", "telegrambots.tgbot.dev"),
    ("update", "telegrambots.tgbot.dev"),
    ("create", "pods"),
    ("get", "pods"),
    ("get", "configmaps"),
    ("create", "deployments.apps"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("delete", "events"),
    ("create", "serviceaccounts/token"),
    ("update", "telegrambots.tgbot.dev/finalizers"),
]
ALLOWED_CLUSTER_WIDE = [
    ("get", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
]
DENIED_CLUSTER_WIDE = [
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "namespaces"),
    ("create", "namespaces"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("list", "nodes"),
]


def can_i(account: Cluster, verb: str, resource: str, *scope: str) -> bool:
    """``kubectl auth can-i``; ``resource/subresource`` is asked with --subresource."""
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    result = account.kubectl("auth", "can-i", verb, resource, *extra, *scope, check=False)
    answer = result.stdout.strip()
    assert answer in {"yes", "no"}, result.stderr
    return answer == "yes"


LIST_ROW = re.compile(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")


def can_i_list(account: Cluster, namespace: str) -> dict[str, set[str]]:
    """``kubectl auth can-i --list``: resource -> verbs (rows with resource names left out)."""
    rows: dict[str, set[str]] = {}
    for line in account.kubectl("auth", "can-i", "--list", "-n", namespace).stdout.splitlines()[1:]:
        match = LIST_ROW.match(line)
        assert match, line
        resource, _urls, resource_names, verbs = match.groups()
        if resource and not resource_names:
            rows.setdefault(resource, set()).update(verbs.split())
    return rows


@pytest.fixture
def operator_account(cluster: Cluster, namespace: str, releases: Releases) -> Cluster:
    """Cluster-wide mode (the default): kubectl acting as the operator's ServiceAccount."""
    release = releases.track(namespace, f"rbac-{secrets.token_hex(3)}")
    kubeconfig = service_account_kubeconfig(cluster, namespace, release)
    return as_kubeconfig(cluster, kubeconfig)


def test_kubeconfig_authenticates_as_the_service_account(
    cluster: Cluster, namespace: str, operator_account: Cluster
) -> None:
    review = json.loads(operator_account.kubectl("auth", "whoami", "-o", "json").stdout)
    username = review["status"]["userInfo"]["username"]
    assert username.startswith(f"system:serviceaccount:{namespace}:")
    assert username.endswith("-telegram-bot-operator")
    kubeconfig = Path(operator_account.env["KUBECONFIG"])
    assert kubeconfig.stat().st_mode & 0o077 == 0, "the token must not be world-readable"


def test_operator_verbs_are_allowed_and_nothing_else(
    cluster: Cluster, namespace: str, operator_account: Cluster
) -> None:
    for verb, resource in ALLOWED_IN_NAMESPACE:
        assert can_i(operator_account, verb, resource, "-n", namespace), f"{verb} {resource}"
    for verb, resource in DENIED_IN_NAMESPACE:
        assert not can_i(operator_account, verb, resource, "-n", namespace), f"{verb} {resource}"
    for verb, resource in ALLOWED_CLUSTER_WIDE:
        assert can_i(operator_account, verb, resource), f"{verb} {resource}"
    for verb, resource in DENIED_CLUSTER_WIDE:
        assert not can_i(operator_account, verb, resource), f"{verb} {resource}"
    # Cluster-wide mode serves every namespace.
    assert can_i(operator_account, "watch", "telegrambots.tgbot.dev", "--all-namespaces")


def test_can_i_list_shows_only_the_granted_rules(namespace: str, operator_account: Cluster) -> None:
    rows = can_i_list(operator_account, namespace)
    assert rows["secrets"] == {"get", "create", "patch", "update"}
    assert rows["telegrambots.tgbot.dev"] == {"get", "list", "watch", "patch"}
    assert rows["telegrambots.tgbot.dev/status"] == {"get", "patch", "update"}
    assert rows["events"] == {"create", "patch"}
    assert rows["events.events.k8s.io"] == {"create", "patch"}
    assert rows["customresourcedefinitions.apiextensions.k8s.io"] == {"get", "list", "watch"}
    assert rows["namespaces"] == {"list", "watch"}
    assert "pods" not in rows
    assert "configmaps" not in rows


def test_the_operators_own_requests_succeed(
    cluster: Cluster, namespace: str, operator_account: Cluster
) -> None:
    """What the operator really does: read the token, write <name>-webhook, status, events."""
    cluster.kubectl(
        "create", "secret", "generic", "echo-token", "-n", namespace, "--from-literal=token=1:abc"
    )
    bot = {
        "apiVersion": "tgbot.dev/v1alpha1",
        "kind": "TelegramBot",
        "metadata": {"name": "echo", "namespace": namespace},
        "spec": {
            "tokenSecretRef": {"name": "echo-token"},
            "webhook": {"url": "https://bot.example.com/webhook"},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(bot))

    op = operator_account
    assert op.kubectl("get", "secret", "echo-token", "-n", namespace, "-o", "jsonpath={.data.token}").stdout
    op.kubectl("get", "tgbot", "-n", namespace)
    op.kubectl("get", "tgbot", "--all-namespaces")
    uid = op.kubectl("get", "tgbot", "echo", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    webhook_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "echo-webhook",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "tgbot.dev/v1alpha1",
                    "kind": "TelegramBot",
                    "name": "echo",
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "stringData": {"secret-token": "s3cr3t"},
    }
    op.kubectl("create", "-f", "-", input=json.dumps(webhook_secret))
    op.kubectl(
        "patch", "secret", "echo-webhook", "-n", namespace, "--type=merge", "-p",
        json.dumps({"stringData": {"previous-secret-token": "s3cr3t", "secret-token": "n3w"}}),
    )  # fmt: skip
    op.kubectl(
        "patch", "tgbot", "echo", "-n", namespace, "--type=merge", "-p",
        json.dumps({"metadata": {"finalizers": ["tgbot.dev/webhook"], "annotations": {"tgbot.dev/x": "1"}}}),
    )  # fmt: skip
    op.kubectl(
        "patch", "tgbot", "echo", "-n", namespace, "--subresource=status", "--type=merge", "-p",
        json.dumps({"status": {"webhookSecretName": "echo-webhook", "rotationPhase": "Idle"}}),
    )  # fmt: skip
    status = cluster.kubectl(
        "get", "tgbot", "echo", "-n", namespace, "-o", "jsonpath={.status.rotationPhase}"
    )
    assert status.stdout == "Idle"
    # Releasing the finalizer is a patch too (and lets the namespace go away).
    op.kubectl(
        "patch", "tgbot", "echo", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )  # fmt: skip
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "echo.registered", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "tgbot.dev/v1alpha1",
            "kind": "TelegramBot",
            "name": "echo",
            "namespace": namespace,
            "uid": uid,
        },
        "reason": "WebhookRegistered",
        "message": "webhook set",
        "type": "Normal",
    }
    op.kubectl("create", "-f", "-", input=json.dumps(event))
    op.kubectl("get", "crd", "telegrambots.tgbot.dev")
    op.kubectl("get", "namespaces")

    # And what it must not do.
    for args in (
        ("get", "secrets", "-n", namespace),
        ("delete", "secret", "echo-token", "-n", namespace),
        ("delete", "tgbot", "echo", "-n", namespace),
        ("run", "x", "--image=busybox", "-n", namespace),
        ("get", "configmaps", "-n", namespace),
    ):
        refused = op.kubectl(*args, check=False)
        assert refused.returncode != 0, args
        assert "Forbidden" in refused.stderr or "forbidden" in refused.stderr, refused.stderr
    assert cluster.kubectl("get", "secret", "echo-token", "-n", namespace, "-o", "name").stdout.strip()


def test_watch_namespaces_confines_the_operator(cluster: Cluster, namespace: str, releases: Releases) -> None:
    other = f"t-{secrets.token_hex(4)}"
    cluster.kubectl("create", "namespace", other)
    try:
        release = releases.track(namespace, f"ns-{secrets.token_hex(3)}")
        kubeconfig = service_account_kubeconfig(
            cluster, namespace, release, values={"watchNamespaces": [namespace]}
        )
        op = as_kubeconfig(cluster, kubeconfig)
        assert can_i(op, "get", "secrets", "-n", namespace)
        assert can_i(op, "patch", "telegrambots.tgbot.dev/status", "-n", namespace)
        assert not can_i(op, "get", "secrets", "-n", other)
        assert not can_i(op, "watch", "telegrambots.tgbot.dev", "-n", other)
        assert not can_i(op, "watch", "telegrambots.tgbot.dev", "--all-namespaces")
        for verb, resource in ALLOWED_CLUSTER_WIDE:
            assert can_i(op, verb, resource), f"{verb} {resource}"
        account = operator_service_account(cluster, namespace, release)
        roles = cluster.kubectl("get", "roles", "-n", namespace, "-o", "name").stdout.split()
        assert roles == [f"role.rbac.authorization.k8s.io/{account}"]
        assert cluster.kubectl("get", f"clusterrole/{namespace}-{account}", check=False).returncode != 0
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)
