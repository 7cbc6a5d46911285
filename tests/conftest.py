"""Shared fixtures: a real Kubernetes control plane and a namespace per test.

Which cluster the tests use:
- ``USE_EXISTING_CLUSTER=true`` (controller-runtime's envtest convention): the
  cluster of ``KUBECONFIG`` (kind, k3d, a cloud cluster), with ``kubectl`` and
  ``helm`` from ``PATH``. Nothing is started or stopped.
- otherwise a local etcd + kube-apiserver + kube-controller-manager, started
  once per session from ``KUBEBUILDER_ASSETS`` when set, else from our cache of
  binaries built from Go modules by ``hack/build-controlplane.sh``.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support import CRD_PATH, Cluster, Emulator, use_existing_cluster
from tgbot_emulator import EmulatorClient, EmulatorConfig, EmulatorServer
from tgbot_localdev.controlplane import ControlPlane, find_assets

REPO_ROOT = Path(__file__).resolve().parents[1]

# Property tests: no per-example deadline (our machines are shared and noisy, and speed is measured
# in benchmarks, not asserted); in CI the examples are derandomized, so a run is reproducible and a
# failure found once is found again. Locally every run explores new examples.
hypothesis_settings.register_profile("default", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")


#: logging's own record factory, taken before any test module is imported.
_PRISTINE_RECORD_FACTORY = logging.getLogRecordFactory()


#: Fixtures that need the control plane's binaries (the API server, or helm/kubectl from the same
#: build): a test using any of them, directly or through other fixtures, is a ``cluster`` test.
_CLUSTER_FIXTURES = frozenset({"cluster", "helm", "helm3", "any_helm"})
_PODS_DIR = Path(__file__).resolve().parent / "pods"
#: End-to-end tests against the control plane, whatever fixtures they use.
_E2E_DIR = Path(__file__).resolve().parent / "e2e"
#: Slow by nature: fresh venvs from the package index, benchmark smoke runs.
_SLOW_DIRS = (Path(__file__).resolve().parent / "packaging", Path(__file__).resolve().parent / "benchmarks")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The layers by construction, not by remembering a mark: ``-m "not cluster and not pods and not
    slow"`` is the unit layer (no Go build, no API server, no package index), whatever a file's
    ``pytestmark`` says. By folder: tests/pods -> ``pods``, tests/e2e -> ``cluster``, tests/packaging
    and tests/benchmarks -> ``slow``; elsewhere by the fixtures a test uses."""
    for item in items:
        parents = Path(str(item.path)).parents
        if _PODS_DIR in parents:
            item.add_marker(pytest.mark.pods)
        if any(folder in parents for folder in _SLOW_DIRS):
            item.add_marker(pytest.mark.slow)
        if _E2E_DIR in parents or _CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(autouse=True)
def _pristine_log_record_factory() -> Iterator[None]:
    """tgbot_ptb installs a process-wide record factory that masks tokens (on import, as a bot
    wants it): each test starts without it, so that no test sees another program's logging."""
    logging.setLogRecordFactory(_PRISTINE_RECORD_FACTORY)
    yield
    logging.setLogRecordFactory(_PRISTINE_RECORD_FACTORY)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if use_existing_cluster():
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        if not kubeconfig.exists():
            pytest.fail(f"USE_EXISTING_CLUSTER=true but kubeconfig {kubeconfig} does not exist")
        env = dict(os.environ, KUBECONFIG=str(kubeconfig))
        server = subprocess.run(
            ["kubectl", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        yield Cluster(kubeconfig=kubeconfig, env=env, server=server, has_garbage_collector=True)
        return

    assets = find_assets(sys.stderr)
    workdir = tmp_path_factory.mktemp("controlplane")
    plane = ControlPlane(assets=assets, workdir=workdir)
    plane.start()
    try:
        env = plane.env()
        # helm (Helm 4) and helm3 may come from PATH when KUBEBUILDER_ASSETS (which has none) is used.
        if not (assets / "helm").exists() and shutil.which("helm") is None:
            env["PATH"] = f"{find_helm_folder()}{os.pathsep}{env['PATH']}"
        env["HELM_CACHE_HOME"] = str(workdir / "helm-cache")
        env["HELM_CONFIG_HOME"] = str(workdir / "helm-config")
        env["HELM_DATA_HOME"] = str(workdir / "helm-data")
        yield Cluster(
            kubeconfig=plane.kubeconfig,
            env=env,
            server=plane.server,
            has_garbage_collector=plane.with_controller_manager,
        )
    finally:
        plane.stop()


def find_helm_folder() -> Path:
    """Our cached build's folder, which has helm (built when missing)."""
    saved = os.environ.pop("KUBEBUILDER_ASSETS", None)
    try:
        return find_assets(sys.stderr)
    finally:
        if saved is not None:
            os.environ["KUBEBUILDER_ASSETS"] = saved


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"t-{secrets.token_hex(4)}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "tgbot.dev/test=true")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def crd_installed(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_PATH))
    cluster.kubectl("wait", "--for=condition=Established", "crd/telegrambots.tgbot.dev", "--timeout=60s")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """The Bot API emulator in this test's event loop, webhooks to loopback allowed, retries capped at 2 s."""
    config = EmulatorConfig(port=0, allow_local_webhooks=True, retry_cap_seconds=2)
    async with EmulatorServer(config) as server, EmulatorClient(server.url) as client:
        yield Emulator(url=server.url, client=client)
