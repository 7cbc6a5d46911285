"""Both charts installed into a real API server (with each Helm major): the stored objects, dry-runs,
the kept CRD, the refusals."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import pytest

from tests.charts.chartlib import (
    BOT_CHART,
    BOT_MINIMAL_VALUES,
    CRD_NAME,
    OPERATOR_CHART,
    Helm,
    Obj,
    Releases,
    adopt_for_release,
    container,
    exists,
    get,
    install,
    rules_as_set,
)
from tests.charts.test_bot_environment import EXTRAS, check_extras
from tests.charts.test_operator_chart import KOPF_PERMISSIONS, NAMESPACED_PERMISSIONS
from tests.charts.test_sidecar_values import DEAD_LETTERS, check_dead_letters
from tests.support import Cluster

pytestmark = pytest.mark.cluster


def release_name(prefix: str) -> str:
    """Unique per test: cluster-scoped objects of the release carry its name."""
    return f"{prefix}-{secrets.token_hex(3)}"


def test_operator_chart_installs_and_keeps_its_crd(
    any_helm_cluster: Cluster, namespace: str, releases: Releases
) -> None:
    cluster = any_helm_cluster
    release = releases.track(namespace, release_name("op"))
    if exists(cluster, "crd", CRD_NAME):
        # Installed by an earlier release or test: let this release take it over.
        adopt_for_release(cluster, f"crd/{CRD_NAME}", release, namespace)
    install(cluster, release, OPERATOR_CHART, namespace, {"crds": {"install": True}})
    fullname = f"{release}-telegram-bot-operator"

    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    crd = get(cluster, "crd", CRD_NAME)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
    assert crd["spec"]["names"]["shortNames"] == ["tgbot"]

    deployment = get(cluster, "deployment", fullname, "-n", namespace)
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == fullname
    operator = container(deployment, "operator")
    assert operator["args"] == [
        "--all-namespaces",
        "--liveness-listen=0.0.0.0:8080",
        "--metrics-listen=0.0.0.0:9090",
        "--log-level=info",
        "--secret-reads=watch",
    ]
    assert {(p["name"], p["containerPort"]) for p in operator["ports"]} == {
        ("health", 8080),
        ("metrics", 9090),
    }
    assert operator["securityContext"]["readOnlyRootFilesystem"] is True
    assert operator["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    assert exists(cluster, "serviceaccount", fullname, "-n", namespace)
    service = get(cluster, "service", fullname, "-n", namespace)
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"metrics": 9090, "health": 8080}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    role = get(cluster, "clusterrole", f"{namespace}-{fullname}")
    assert rules_as_set(role["rules"]) == NAMESPACED_PERMISSIONS
    kopf_role = get(cluster, "clusterrole", f"{namespace}-{fullname}-kopf")
    assert rules_as_set(kopf_role["rules"]) == KOPF_PERMISSIONS
    binding = get(cluster, "clusterrolebinding", f"{namespace}-{fullname}")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": fullname, "namespace": namespace}]
    # The API server accepted the Secrets policy (it compiles the CEL) and its binding.
    policy = get(cluster, "validatingadmissionpolicy", f"{namespace}-{fullname}-secrets")
    assert policy["spec"]["matchConditions"][0]["expression"].endswith(f":{namespace}:{fullname}'")
    assert exists(cluster, "validatingadmissionpolicybinding", f"{namespace}-{fullname}-secrets")

    listed = json.loads(cluster.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in listed] == [(release, "deployed")]

    cluster.helm("uninstall", release, "-n", namespace)
    assert not exists(cluster, "deployment", fullname, "-n", namespace)
    assert not exists(cluster, "clusterrole", f"{namespace}-{fullname}")
    assert not exists(cluster, "validatingadmissionpolicy", f"{namespace}-{fullname}-secrets")
    # The CRD stays: deleting it would delete every TelegramBot in the cluster.
    assert exists(cluster, "crd", CRD_NAME)


def test_bot_chart_installs_a_telegram_bot_with_the_derived_url(
    any_helm_cluster: Cluster, namespace: str, releases: Releases, telegrambot_crd: str
) -> None:
    cluster = any_helm_cluster
    release = releases.track(namespace, release_name("echo"))
    values: dict[str, Any] = {
        **BOT_MINIMAL_VALUES,
        "token": {"create": True, "value": "123456:TEST-token"},
        "telegramBot": {"webhook": {"path": "/tg/echo", "allowedUpdates": ["message"]}},
        "sidecar": {"trustedProxies": ["10.42.0.0/16"]},
    }
    notes = install(cluster, release, BOT_CHART, namespace, values).stdout
    fullname = f"{release}-telegram-bot"
    assert f"The NetworkPolicy {fullname} lets only the ingress controller's pods" in notes, notes

    bot = get(cluster, "tgbot", fullname, "-n", namespace)
    assert bot["spec"]["webhook"]["url"] == "https://bot.example.com/tg/echo"
    assert bot["spec"]["tokenSecretRef"] == {"name": f"{fullname}-token", "key": "token"}
    # The API server applied the CRD's defaults to what the chart left out.
    assert bot["spec"]["webhook"]["certificate"] == {"mode": "None"}
    assert bot["spec"]["webhook"]["allowedUpdates"] == ["message"]
    wide = cluster.kubectl("get", "tgbot", "-n", namespace, "-o", "wide").stdout
    assert "https://bot.example.com/tg/echo" in wide

    secret = get(cluster, "secret", f"{fullname}-token", "-n", namespace)
    assert secret["type"] == "Opaque"
    deployment = get(cluster, "deployment", fullname, "-n", namespace)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-secret"]["secret"]["secretName"] == f"{fullname}-webhook"
    sidecar = container(deployment, "sidecar")
    assert "--path=/tg/echo" in sidecar["args"]
    ingress = get(cluster, "ingress", fullname, "-n", namespace)
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/tg/echo"
    # On by default: the API server stored the webhook rule with both selectors in one peer.
    policy = get(cluster, "networkpolicy", fullname, "-n", namespace)
    webhook_rule = policy["spec"]["ingress"][0]
    assert webhook_rule["ports"] == [{"port": "webhook", "protocol": "TCP"}]
    assert set(webhook_rule["from"][0]) == {"namespaceSelector", "podSelector"}
    service = get(cluster, "service", fullname, "-n", namespace)
    assert {p["name"] for p in service["spec"]["ports"]} == {"webhook", "admin"}

    cluster.helm("uninstall", release, "-n", namespace)
    assert not exists(cluster, "tgbot", fullname, "-n", namespace)


def test_install_refuses_trusted_proxies_without_the_network_policy(
    any_helm_cluster: Cluster, namespace: str, releases: Releases, telegrambot_crd: str
) -> None:
    cluster = any_helm_cluster
    release = releases.track(namespace, release_name("xff"))
    values = {
        **BOT_MINIMAL_VALUES,
        "sidecar": {"trustedProxies": ["10.42.0.0/16"]},
        "networkPolicy": {"enabled": False},
    }
    with pytest.raises(
        AssertionError, match=re.escape("sidecar.trustedProxies is set but networkPolicy.enabled is false")
    ):
        install(cluster, release, BOT_CHART, namespace, values)
    assert not exists(cluster, "deployment", f"{release}-telegram-bot", "-n", namespace)
    # Refused while rendering: no release was recorded, not even a failed one.
    status = cluster.helm("status", release, "-n", namespace, check=False)
    assert status.returncode != 0
    assert "not found" in status.stderr, status.stderr
    # Acknowledged: installed, with no NetworkPolicy.
    values["sidecar"] = {"trustedProxies": ["10.42.0.0/16"], "trustedProxiesWithoutNetworkPolicy": True}
    install(cluster, release, BOT_CHART, namespace, values)
    assert exists(cluster, "deployment", f"{release}-telegram-bot", "-n", namespace)
    assert not exists(cluster, "networkpolicy", f"{release}-telegram-bot", "-n", namespace)


def test_the_crd_rejects_what_the_bot_chart_must_not_produce(
    cluster: Cluster, namespace: str, releases: Releases, telegrambot_crd: str
) -> None:
    """An http URL for the official Bot API fails the CRD's validation: the install fails."""
    release = releases.track(namespace, release_name("bad"))
    values = {**BOT_MINIMAL_VALUES, "telegramBot": {"webhook": {"url": "http://bot.example.com/webhook"}}}
    with pytest.raises(AssertionError, match="https on port 443, 80, 88 or 8443"):
        install(cluster, release, BOT_CHART, namespace, values)


def dry_run(cluster: Cluster, manifests: str, namespace: str) -> str:
    result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifests)
    return result.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"crds": {"install": False}},
        {
            "crds": {"install": False},
            "operator": {"logFormat": "json"},
            "podDisruptionBudget": {"enabled": True},
        },
    ],
    ids=["defaults", "options"],
)
def test_operator_chart_passes_server_side_dry_run_under_restricted_pod_security(
    cluster: Cluster, namespace: str, helm: Helm, values: dict[str, Any]
) -> None:
    restrict(cluster, namespace)
    manifests = helm.template(OPERATOR_CHART, values, namespace=namespace).stdout
    warnings = dry_run(cluster, manifests, namespace)
    assert "PodSecurity" not in warnings, warnings


def test_operator_chart_namespaced_rbac_passes_server_side_dry_run(
    cluster: Cluster, namespace: str, helm: Helm
) -> None:
    values = {"crds": {"install": False}, "watchNamespaces": [namespace]}
    manifests = helm.template(OPERATOR_CHART, values, namespace=namespace).stdout
    dry_run(cluster, manifests, namespace)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"telegramBot": {"webhook": {"certificate": {"mode": "SelfSigned"}}}},
        {"telegramBot": {"webhook": {"certificate": {"mode": "Secret", "secretName": "tls"}}}},
        {
            "sidecar": {"trustedProxies": ["10.42.0.0/16"]},
            "networkPolicy": {"monitoring": None, "adminFrom": [{"ipBlock": {"cidr": "10.0.5.0/24"}}]},
            "serviceAccount": {"create": True},
            "token": {"create": True, "value": "1:a"},
        },
    ],
    ids=["defaults", "self-signed", "secret", "options"],
)
def test_bot_chart_passes_server_side_dry_run_under_restricted_pod_security(
    cluster: Cluster, namespace: str, helm: Helm, telegrambot_crd: str, extra: dict[str, Any]
) -> None:
    restrict(cluster, namespace)
    values = merge(BOT_MINIMAL_VALUES, extra)
    manifests = helm.template(BOT_CHART, values, namespace=namespace).stdout
    warnings = dry_run(cluster, manifests, namespace)
    assert "PodSecurity" not in warnings, warnings


def test_restricted_pod_security_check_is_real(
    cluster: Cluster, namespace: str, helm: Helm, telegrambot_crd: str
) -> None:
    """The control for the two tests above: a privileged setting is reported."""
    restrict(cluster, namespace)
    values = merge(BOT_MINIMAL_VALUES, {"bot": {"securityContext": {"allowPrivilegeEscalation": True}}})
    manifests = helm.template(BOT_CHART, values, namespace=namespace).stdout
    warnings = dry_run(cluster, manifests, namespace)
    assert "violate PodSecurity" in warnings
    assert "allowPrivilegeEscalation" in warnings


def test_helm_test_pod_is_admitted_under_restricted_pod_security(
    cluster: Cluster, namespace: str, helm: Helm
) -> None:
    """Pods (unlike Deployments) are refused, not just warned about, when they break the policy."""
    restrict(cluster, namespace)
    manifests = helm.template(OPERATOR_CHART, {"crds": {"install": False}}, namespace=namespace).stdout
    pods = [doc for doc in manifests.split("\n---") if "\nkind: Pod\n" in doc]
    assert len(pods) == 1
    cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=pods[0])


def restrict(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
        "--overwrite",
    )


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


@pytest.mark.parametrize("mode", ["namespaced", "cluster"])
def test_peering_install_creates_the_peering_object(
    any_helm_cluster: Cluster, namespace: str, releases: Releases, telegrambot_crd: str, mode: str
) -> None:
    """replicaCount 2: kopf's peering CRDs, then (a post-install hook) the peering object."""
    cluster = any_helm_cluster
    release = releases.track(namespace, release_name("ha"))
    for crd in ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        if exists(cluster, "crd", crd):
            adopt_for_release(cluster, f"crd/{crd}", release, namespace)
    values: dict[str, Any] = {"crds": {"install": False}, "replicaCount": 2}
    if mode == "namespaced":
        values["watchNamespaces"] = [namespace]
    install(cluster, release, OPERATOR_CHART, namespace, values)
    fullname = f"{release}-telegram-bot-operator"
    where = ["kopfpeerings.kopf.dev", fullname, "-n", namespace]
    if mode == "cluster":
        where = ["clusterkopfpeerings.kopf.dev", fullname]
    peering: Obj = get(cluster, *where)
    assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    deployment = get(cluster, "deployment", fullname, "-n", namespace)
    assert deployment["spec"]["replicas"] == 2
    assert f"--peering={fullname}" in container(deployment, "operator")["args"]
    if mode == "namespaced":
        rules = rules_as_set(get(cluster, "role", fullname, "-n", namespace)["rules"])
        assert ("kopf.dev", "kopfpeerings", "patch") in rules
    else:
        rules = rules_as_set(get(cluster, "clusterrole", f"{namespace}-{fullname}-kopf")["rules"])
        assert ("kopf.dev", "clusterkopfpeerings", "patch") in rules
    # An upgrade re-runs the hook (the object is recreated, not duplicated).
    install(cluster, release, OPERATOR_CHART, namespace, values)
    assert exists(cluster, *where)
    if mode == "cluster":  # hooks are not uninstalled; this one is cluster-scoped
        cluster.kubectl("delete", *where)


def test_bot_chart_extras_are_stored_by_the_api_server(
    any_helm_cluster: Cluster, namespace: str, releases: Releases, telegrambot_crd: str
) -> None:
    """bot.extraEnv/extraVolumes/extraVolumeMounts and BOT_API_SERVER, as the API server keeps them."""
    cluster = any_helm_cluster
    release = releases.track(namespace, release_name("extras"))
    values = merge(BOT_MINIMAL_VALUES, EXTRAS)
    install(cluster, release, BOT_CHART, namespace, values)
    check_extras(get(cluster, "deployment", f"{release}-telegram-bot", "-n", namespace))


def test_bot_chart_dead_letter_volume_is_stored_by_the_api_server(
    any_helm_cluster: Cluster, namespace: str, releases: Releases, telegrambot_crd: str
) -> None:
    cluster = any_helm_cluster
    release = releases.track(namespace, release_name("dl"))
    install(cluster, release, BOT_CHART, namespace, merge(BOT_MINIMAL_VALUES, {"sidecar": DEAD_LETTERS}))
    check_dead_letters(get(cluster, "deployment", f"{release}-telegram-bot", "-n", namespace))
