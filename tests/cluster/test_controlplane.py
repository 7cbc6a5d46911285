"""The test cluster itself: real API server, kubectl, helm and garbage collection."""

from __future__ import annotations

import base64
import json
import shutil
import time

import pytest

from tests.support import Cluster, use_existing_cluster


def test_namespace_and_secret_round_trip(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl(
        "create", "secret", "generic", "echo-token", "-n", namespace, "--from-literal=token=1:abc"
    )
    secret = json.loads(cluster.kubectl("get", "secret", "echo-token", "-n", namespace, "-o", "json").stdout)
    assert base64.b64decode(secret["data"]["token"]) == b"1:abc"
    listed = cluster.kubectl("get", "secrets", "-n", namespace, "-o", "name").stdout.split()
    assert "secret/echo-token" in listed


def test_api_server_reports_a_stamped_version(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    server = version["serverVersion"]
    # An unstamped build says v0.0.0-master, which breaks charts declaring kubeVersion.
    assert server["gitVersion"].startswith("v1."), server
    assert int(server["minor"].rstrip("+")) >= 30


def test_rbac_is_enforced(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    can = cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "secrets",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:nobody",
        check=False,
    )
    assert can.stdout.strip() == "no"


def test_helm_talks_to_the_cluster(cluster: Cluster, namespace: str) -> None:
    version = cluster.helm("version", "--short").stdout
    # Our build's helm is Helm 4; an existing cluster's (USE_EXISTING_CLUSTER) is the user's own.
    assert version.startswith("v4." if not use_existing_cluster() else ("v3.", "v4.")), version
    releases = json.loads(cluster.helm("list", "-n", namespace, "-o", "json").stdout)
    assert releases == []


def test_helm3_is_there_too(cluster: Cluster, namespace: str) -> None:
    """The charts are tested with both majors: our build keeps Helm 3 as ``helm3``."""
    helm3 = cluster.using_helm("helm3")
    if use_existing_cluster() and shutil.which("helm3", path=cluster.env.get("PATH")) is None:
        pytest.skip("no helm3 on PATH")
    assert helm3.helm("version", "--short").stdout.startswith("v3."), "helm3 is not Helm 3"
    releases = json.loads(helm3.helm("list", "-n", namespace, "-o", "json").stdout)
    assert releases == []


def test_owned_objects_are_garbage_collected(cluster: Cluster, namespace: str) -> None:
    if not cluster.has_garbage_collector:
        pytest.skip("no kube-controller-manager in this control plane")
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    uid = cluster.kubectl(
        "get", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(child))
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cluster.kubectl("get", "configmap", "child", "-n", namespace, check=False).returncode != 0:
            return
        time.sleep(0.5)
    pytest.fail("the owned ConfigMap was not garbage collected within 60 s")


def test_namespaces_get_a_default_service_account(cluster: Cluster, namespace: str) -> None:
    if not cluster.has_garbage_collector:
        pytest.skip("no kube-controller-manager in this control plane")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail("no default ServiceAccount after 30 s")
