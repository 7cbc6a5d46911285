"""The operator chart installed with our operator image: a Ready pod, in-cluster, on its ServiceAccount."""

from __future__ import annotations

import urllib.request

from tests.pods.conftest import PodTestCluster
from tgbot_localdev.releases import OperatorRelease, kube_json, pod_ready_since


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a ClusterIP of our cluster
        return response.status, response.read().decode()


def test_operator_pod_is_ready_in_cluster_with_the_charts_service_account(
    pod_cluster: PodTestCluster, operator_release: OperatorRelease
) -> None:
    (pod,) = operator_release.pods()
    assert pod_ready_since(pod), pod["status"]
    spec = pod["spec"]
    deployment = kube_json(
        pod_cluster,
        "get",
        "deployment",
        "-n",
        operator_release.namespace,
        "-l",
        "app.kubernetes.io/component=operator",
    )["items"][0]
    service_account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert spec["serviceAccountName"] == service_account
    kube_json(pod_cluster, "get", "serviceaccount", service_account, "-n", operator_release.namespace)
    # In-cluster credentials: the ServiceAccount token volume the API server's admission added.
    (container,) = spec["containers"]
    assert container["image"] == pod_cluster.images["tgbot-operator"].ref
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"], status
    assert status["restartCount"] == 0, status
    # It talks to the API server as that ServiceAccount, which RBAC never refused (a refusal names
    # the user: `User "system:serviceaccount:<namespace>:<name>" cannot ...`).
    logs = pod_cluster.kubectl("logs", "-n", operator_release.namespace, pod["metadata"]["name"]).stdout
    user = f"system:serviceaccount:{operator_release.namespace}:{service_account}"
    assert "Starting tgbot-operator" in logs, logs[-3000:]
    refused = [line for line in logs.splitlines() if user in line and "cannot" in line]
    assert not refused, refused[:5]


def test_operator_liveness_and_metrics_through_its_service(
    pod_cluster: PodTestCluster, operator_release: OperatorRelease
) -> None:
    (service,) = kube_json(pod_cluster, "get", "services", "-n", operator_release.namespace)["items"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    cluster_ip = service["spec"]["clusterIP"]
    # From this machine to the ClusterIP: kube-proxy's rules carry it to the pod.
    status, body = _get(f"http://{cluster_ip}:{ports['metrics']}/metrics")
    assert status == 200
    assert "tgbot_" in body, body[:500]
    status, _ = _get(f"http://{cluster_ip}:{ports['health']}/healthz")
    assert status == 200
