"""Fixtures of the chart tests: helm without a cluster, and releases that are uninstalled afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.charts.chartlib import CRD_FILE, CRD_NAME, Helm, Releases, exists, helm_folder
from tests.support import Cluster


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm for lint and template (no cluster needed)."""
    return Helm(helm_folder(), tmp_path_factory.mktemp("helm-home"))


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
