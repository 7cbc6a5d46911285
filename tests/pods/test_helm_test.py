"""`helm test` runs the operator chart's test hook for real: a pod that curls /healthz and /metrics
through the operator's Service."""

from __future__ import annotations

from tests.pods.conftest import PodTestCluster
from tests.pods.podlib import OperatorRelease, helm


def test_helm_test_of_the_operator_chart_passes(
    pod_cluster: PodTestCluster, operator_release: OperatorRelease
) -> None:
    # The test pod curls http://<service>:<port>: our cluster's DNS (clusterdns.py) resolves it.
    assert "curl" in pod_cluster.images, "hack/build-images.sh builds the helm test image"
    result = helm(
        pod_cluster,
        operator_release.helm,
        "test",
        operator_release.name,
        "-n",
        operator_release.namespace,
        "--timeout",
        "3m",
    )
    assert "Succeeded" in result.stdout, result.stdout
    assert f"{operator_release.fullname}-test" in result.stdout, result.stdout
