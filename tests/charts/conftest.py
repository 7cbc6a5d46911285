"""Fixtures of the chart tests: helm without a cluster, and releases that are uninstalled afterwards.

Every chart test runs with Helm 4 (``helm``). Lint, schema and failure messages, the rendered
objects (compared between the majors) and the installs run with Helm 3 (``helm3``) as well, through
the parametrized ``any_helm`` / ``any_helm_cluster`` fixtures; the heavier end-to-end tests (RBAC,
the operator as the chart's ServiceAccount) run once, with Helm 4.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.charts.chartlib import (
    CRD_FILE,
    CRD_NAME,
    HELM_COMMANDS,
    Helm,
    Releases,
    exists,
    find_helm,
)
from tests.support import Cluster


def _helm(command: str, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = find_helm(command)
    if binary is None:
        pytest.skip(f"no {command} (Helm {HELM_COMMANDS[command]}) beside helm or on PATH")
    return Helm(binary, tmp_path_factory.mktemp(f"{command}-home"))


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm (Helm 4 in our build) for lint and template (no cluster needed)."""
    return _helm("helm", tmp_path_factory)


@pytest.fixture(scope="session")
def helm3(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """Helm 3 for lint and template."""
    return _helm("helm3", tmp_path_factory)


@pytest.fixture(scope="session", params=list(HELM_COMMANDS))
def helm_command(request: pytest.FixtureRequest) -> str:
    """Each Helm major in turn (``helm``, ``helm3``)."""
    command: str = request.param
    return command


@pytest.fixture(scope="session")
def any_helm(helm_command: str, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """lint/template with each Helm major in turn."""
    return _helm(helm_command, tmp_path_factory)


@pytest.fixture
def any_helm_cluster(cluster: Cluster, any_helm: Helm) -> Cluster:
    """The cluster, with ``cluster.helm()`` running each Helm major in turn."""
    return cluster.using_helm(str(any_helm.binary))


@pytest.fixture
def releases(cluster: Cluster) -> Iterator[Releases]:
    tracker = Releases(cluster)
    yield tracker
    tracker.cleanup()


@pytest.fixture
def telegrambot_crd(cluster: Cluster) -> str:
    """The TelegramBot CRD is in the cluster (from crds/ when no release installed it)."""
    if not exists(cluster, "crd", CRD_NAME):
        cluster.kubectl("apply", "--server-side", "-f", str(CRD_FILE))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return CRD_NAME
