"""Acting as the operator's ServiceAccount, with exactly the permissions the chart grants.

``service_account_kubeconfig`` installs the telegram-bot-operator chart (only what RBAC needs
matters: the Deployment is stored but never runs, there is no kubelet) and returns a kubeconfig
that authenticates with a token of the chart's ServiceAccount. Run the operator with it to prove
the chart's RBAC is enough for everything the operator does::

    kubeconfig = service_account_kubeconfig(cluster, namespace, "tgbot")
    run_operator(["--kubeconfig", str(kubeconfig), "--namespace", namespace])

Cluster-scoped objects of the release (ClusterRoles named ``<namespace>-<fullname>...``) stay
when the test namespace is deleted; ``uninstall`` removes them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.charts.chartlib import CRD_NAME, OPERATOR_CHART, exists, install
from tests.support import Cluster
from tgbot_localdev.polling import wait_for


def service_account_kubeconfig(
    cluster: Cluster,
    namespace: str,
    release: str,
    *,
    values: Mapping[str, Any] | None = None,
    directory: Path | None = None,
    token_duration: str = "2h",  # noqa: S107 - a lifetime, not a password
) -> Path:
    """Install the operator chart as ``release`` in ``namespace``; a kubeconfig as its ServiceAccount.

    The TelegramBot CRD is installed by the release only when the cluster does not have it yet
    (``crds.install=false`` otherwise). ``values`` are merged over that (e.g.
    ``{"watchNamespaces": [namespace]}`` for namespaced RBAC).
    """
    merged: dict[str, Any] = {"crds": {"install": not exists(cluster, "crd", CRD_NAME)}}
    merged.update(values or {})
    install(cluster, release, OPERATOR_CHART, namespace, merged)
    if merged["crds"].get("install"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")

    account = operator_service_account(cluster, namespace, release)
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, f"--duration={token_duration}"
    ).stdout.strip()
    folder = directory or Path(tempfile.mkdtemp(prefix=f"tgbot-sa-{release}-"))
    path = folder / f"kubeconfig-{namespace}-{release}"
    path.write_text(_kubeconfig_for_token(cluster, token, namespace, account))
    path.chmod(0o600)
    _wait_until_authorized(cluster, path, namespace)
    return path


def operator_service_account(cluster: Cluster, namespace: str, release: str) -> str:
    """The ServiceAccount the release's operator Deployment runs as."""
    deployments = json.loads(
        cluster.kubectl(
            "get",
            "deployments",
            "-n",
            namespace,
            "-l",
            f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert len(deployments) == 1, f"expected one operator Deployment of release {release} in {namespace}"
    name: str = deployments[0]["spec"]["template"]["spec"]["serviceAccountName"]
    return name


def uninstall(cluster: Cluster, namespace: str, release: str) -> None:
    cluster.helm("uninstall", release, "-n", namespace, check=False)


def _kubeconfig_for_token(cluster: Cluster, token: str, namespace: str, account: str) -> str:
    """Same server and CA as the cluster's kubeconfig, the ServiceAccount's token as the user."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    current = admin.get("current-context")
    contexts = {c["name"]: c["context"] for c in admin["contexts"]}
    context = contexts[current] if current in contexts else next(iter(contexts.values()))
    clusters = {c["name"]: c["cluster"] for c in admin["clusters"]}
    source = clusters[context["cluster"]]
    entry: dict[str, Any] = {"server": source["server"]}
    if "certificate-authority-data" in source:
        entry["certificate-authority-data"] = source["certificate-authority-data"]
    elif "certificate-authority" in source:
        ca = Path(source["certificate-authority"])
        if not ca.is_absolute():
            ca = cluster.kubeconfig.parent / ca
        entry["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    elif source.get("insecure-skip-tls-verify"):
        entry["insecure-skip-tls-verify"] = True
    user = f"system:serviceaccount:{namespace}:{account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": entry}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": "cluster", "user": user, "namespace": namespace}}
        ],
        "current-context": "operator",
    }
    return yaml.safe_dump(config, sort_keys=False)


def _wait_until_authorized(cluster: Cluster, kubeconfig: Path, namespace: str, timeout: float = 30) -> None:
    """RBAC caches take a moment to see new bindings: wait until a granted verb is allowed."""
    account = as_kubeconfig(cluster, kubeconfig)
    wait_for(
        "the ServiceAccount to be allowed to watch telegrambots",
        lambda: (
            account.kubectl(
                "auth", "can-i", "watch", "telegrambots.tgbot.dev", "-n", namespace, check=False
            ).stdout.strip()
            == "yes"
        ),
        timeout=timeout,
        interval=0.5,
    )


def as_kubeconfig(cluster: Cluster, kubeconfig: Path) -> Cluster:
    """The same cluster seen through another kubeconfig (kubectl/helm run as its user)."""
    return dataclasses.replace(
        cluster, kubeconfig=kubeconfig, env=dict(cluster.env, KUBECONFIG=str(kubeconfig))
    )
