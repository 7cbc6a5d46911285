"""The operator's ServiceAccount can do what the operator does, and nothing else.

Checked with a token of the chart's ServiceAccount against the real API server (RBAC on):
``kubectl auth can-i`` for the verbs, and real calls for the operator's own requests.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.charts.chartlib import Releases
from tests.charts.rbac import as_kubeconfig, operator_service_account, service_account_kubeconfig
from tests.support import Cluster
from tgbot_localdev.polling import wait_for
from tgbot_operator.kube_http import MERGE_PATCH, Transport
from tgbot_operator.login import connection_info

pytestmark = pytest.mark.cluster

ALLOWED_IN_NAMESPACE = [
    ("list", "telegrambots.tgbot.dev"),
    ("watch", "telegrambots.tgbot.dev"),
    ("patch", "telegrambots.tgbot.dev"),
    ("patch", "telegrambots.tgbot.dev/status"),
    ("get", "secrets"),
    ("create", "secrets"),
    ("update", "secrets"),
    ("list", "secrets"),  # the metadata-only watch (operator.secretReads=watch, the default)
    ("watch", "secrets"),
    ("create", "events"),
]
DENIED_IN_NAMESPACE = [
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
    # Granted once, never called: kopf GETs nothing by name and patches status, the operator
    # replaces its Secret (PUT), Events are core v1 creates.
    ("get", "telegrambots.tgbot.dev"),
    ("get", "telegrambots.tgbot.dev/status"),
    ("update", "telegrambots.tgbot.dev/status"),
    ("patch", "secrets"),
    ("patch", "events"),
    ("create", "events.events.k8s.io"),
    ("patch", "events.events.k8s.io"),
]
ALLOWED_CLUSTER_WIDE = [
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
]
DENIED_CLUSTER_WIDE = [
    ("get", "customresourcedefinitions.apiextensions.k8s.io"),
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
    assert rows["secrets"] == {"get", "list", "watch", "create", "update"}
    assert rows["telegrambots.tgbot.dev"] == {"list", "watch", "patch"}
    assert rows["telegrambots.tgbot.dev/status"] == {"patch"}
    assert rows["events"] == {"create"}
    assert "events.events.k8s.io" not in rows
    assert rows["customresourcedefinitions.apiextensions.k8s.io"] == {"list", "watch"}
    assert rows["namespaces"] == {"list", "watch"}
    assert "pods" not in rows
    assert "configmaps" not in rows


def webhook_secret(namespace: str, bot: str, uid: str, **changes: Any) -> dict[str, Any]:
    """The Secret the operator writes for TelegramBot ``bot``; ``changes`` replace metadata fields."""
    metadata: dict[str, Any] = {
        "name": f"{bot}-webhook",
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "tgbot-operator", "tgbot.dev/bot": bot},
        "ownerReferences": [
            {
                "apiVersion": "tgbot.dev/v1alpha1",
                "kind": "TelegramBot",
                "name": bot,
                "uid": uid,
                "controller": True,
            }
        ],
    }
    metadata.update(changes)
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata,
            "stringData": {"secret-token": "s3cr3t"}}  # fmt: skip


def create_bot(cluster: Cluster, namespace: str, name: str = "echo") -> str:
    """A TelegramBot (and its token Secret), created as admin; returns its uid."""
    cluster.kubectl(
        "create", "secret", "generic", f"{name}-token", "-n", namespace, "--from-literal=token=1:abc"
    )
    bot = {
        "apiVersion": "tgbot.dev/v1alpha1",
        "kind": "TelegramBot",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "tokenSecretRef": {"name": f"{name}-token"},
            "webhook": {"url": "https://bot.example.com/webhook"},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(bot))
    uid: str = cluster.kubectl("get", "tgbot", name, "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    return uid


def test_the_operators_own_requests_succeed(
    cluster: Cluster, namespace: str, operator_account: Cluster
) -> None:
    """What the operator really does: read the token, write <name>-webhook, status, events."""
    uid = create_bot(cluster, namespace)

    op = operator_account
    assert op.kubectl("get", "secret", "echo-token", "-n", namespace, "-o", "jsonpath={.data.token}").stdout
    # kopf lists and watches; it never GETs a TelegramBot by name.
    listed = op.kubectl("get", "tgbot", "-n", namespace, "-o", "jsonpath={.items[*].metadata.uid}").stdout
    assert listed == uid
    op.kubectl("get", "tgbot", "--all-namespaces")
    op.kubectl("create", "-f", "-", input=json.dumps(webhook_secret(namespace, "echo", uid)))
    # A rotation replaces the Secret (PUT, with the resourceVersion it read).
    stored = json.loads(op.kubectl("get", "secret", "echo-webhook", "-n", namespace, "-o", "json").stdout)
    stored["stringData"] = {"previous-secret-token": "s3cr3t", "secret-token": "n3w"}
    op.kubectl("replace", "-f", "-", input=json.dumps(stored))
    # kopf's and the operator's patches are bare PATCH requests (kubectl patch would GET first).
    bot = f"/apis/tgbot.dev/v1alpha1/namespaces/{namespace}/telegrambots/echo"
    merge_patch(
        op, bot, {"metadata": {"finalizers": ["tgbot.dev/webhook"], "annotations": {"tgbot.dev/x": "1"}}}
    )
    merge_patch(
        op, f"{bot}/status", {"status": {"webhookSecretName": "echo-webhook", "rotationPhase": "Idle"}}
    )
    status = cluster.kubectl(
        "get", "tgbot", "echo", "-n", namespace, "-o", "jsonpath={.status.rotationPhase}"
    )
    assert status.stdout == "Idle"
    # Releasing the finalizer is a patch too (and lets the namespace go away).
    merge_patch(op, bot, {"metadata": {"finalizers": None}})
    # kopf's Event: a POST with generateName (kopf.event and the log records it posts).
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "kopf-event-", "namespace": namespace},
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
    op.kubectl("get", "crd")
    op.kubectl("get", "namespaces")
    # The metadata-only Secret watch lists (operator.secretReads=watch, the default).
    op.kubectl("get", "secrets", "-n", namespace, "-o", "name")

    # And what it must not do.
    for args in (
        ("delete", "secret", "echo-token", "-n", namespace),
        ("patch", "secret", "echo-token", "-n", namespace, "-p", '{"metadata":{"labels":{"a":"b"}}}'),
        ("delete", "tgbot", "echo", "-n", namespace),
        ("get", "tgbot", "echo", "-n", namespace),
        ("get", "crd", "telegrambots.tgbot.dev"),
        ("run", "x", "--image=busybox", "-n", namespace),
        ("get", "configmaps", "-n", namespace),
    ):
        refused = op.kubectl(*args, check=False)
        assert refused.returncode != 0, args
        assert "Forbidden" in refused.stderr or "forbidden" in refused.stderr, refused.stderr
    assert cluster.kubectl("get", "secret", "echo-token", "-n", namespace, "-o", "name").stdout.strip()


def merge_patch(account: Cluster, path: str, body: dict[str, Any]) -> None:
    """A bare merge PATCH as ``account``, by the operator's own client (kubectl patch would GET first)."""

    async def send() -> None:
        transport = Transport(functools.partial(connection_info, account.kubeconfig))
        try:
            await transport.request("PATCH", path, what=f"patch {path}", body=body, content_type=MERGE_PATCH)
        finally:
            await transport.close()

    asyncio.run(send())


def denied_by_policy(account: Cluster, *args: str, input: str | None = None) -> str:
    """Run a write as ``account`` that the Secrets policy must refuse; returns the message."""
    result = account.kubectl(*args, input=input, check=False)
    assert result.returncode != 0, f"{args} was allowed"
    assert "ValidatingAdmissionPolicy" in result.stderr, result.stderr
    assert "denied request" in result.stderr, result.stderr
    return result.stderr


def wait_for_policy(account: Cluster, namespace: str, timeout: float = 30) -> None:
    """The API server enforces a new policy once its informer has seen it and its binding."""
    probe = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe", "namespace": namespace}}

    def enforced() -> bool:
        dry_run = account.kubectl(
            "create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False
        )
        return "ValidatingAdmissionPolicy" in dry_run.stderr

    wait_for("the Secrets policy to be enforced", enforced, timeout=timeout, interval=0.5)


def test_the_secrets_policy_confines_the_operator_to_its_own_secrets(
    cluster: Cluster, namespace: str, operator_account: Cluster
) -> None:
    """RBAC lets the account create and update any Secret of the namespace; the chart's
    ValidatingAdmissionPolicy, enforced by the API server, narrows that to the Secrets it manages."""
    uid = create_bot(cluster, namespace)
    op = operator_account
    wait_for_policy(op, namespace)
    dry = ("create", "--dry-run=server", "-f", "-")

    unlabelled = webhook_secret(namespace, "echo", uid, labels={})
    assert "labelled app.kubernetes.io/managed-by=tgbot-operator" in denied_by_policy(
        op, *dry, input=json.dumps(unlabelled)
    )
    unowned = webhook_secret(namespace, "echo", uid, ownerReferences=[])
    assert "that controls it" in denied_by_policy(op, *dry, input=json.dumps(unowned))
    misnamed = webhook_secret(namespace, "echo", uid, name="db-credentials")
    assert "that controls it" in denied_by_policy(op, *dry, input=json.dumps(misnamed))
    not_opaque = {**webhook_secret(namespace, "echo", uid), "type": "kubernetes.io/basic-auth"}
    not_opaque["stringData"] = {"username": "u", "password": "p"}
    assert "Opaque" in denied_by_policy(op, *dry, input=json.dumps(not_opaque))

    # Taking over a Secret it does not manage: replacing the user's token Secret, even with the
    # labels and owner of a managed one, is refused because the stored Secret is not one.
    token = json.loads(op.kubectl("get", "secret", "echo-token", "-n", namespace, "-o", "json").stdout)
    forged = webhook_secret(
        namespace, "echo", uid, name="echo-token", resourceVersion=token["metadata"]["resourceVersion"]
    )
    assert "may not take over" in denied_by_policy(op, "replace", "-f", "-", input=json.dumps(forged))
    assert (
        "managed-by"
        not in cluster.kubectl(
            "get", "secret", "echo-token", "-n", namespace, "-o", "jsonpath={.metadata.labels}"
        ).stdout
    )

    # Its own Secret: created and replaced.
    op.kubectl("create", "-f", "-", input=json.dumps(webhook_secret(namespace, "echo", uid)))
    stored = json.loads(op.kubectl("get", "secret", "echo-webhook", "-n", namespace, "-o", "json").stdout)
    stored["stringData"] = {"secret-token": "n3w"}
    op.kubectl("replace", "-f", "-", input=json.dumps(stored))
    # ... but not turned into someone else's.
    stored = json.loads(op.kubectl("get", "secret", "echo-webhook", "-n", namespace, "-o", "json").stdout)
    stored["metadata"]["labels"] = {}
    assert "managed-by" in denied_by_policy(op, "replace", "-f", "-", input=json.dumps(stored))

    # Everyone else is left to RBAC: the admin still writes any Secret.
    elsewhere = webhook_secret(namespace, "echo", uid, labels={}, name="admin-made")
    cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(elsewhere))


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
