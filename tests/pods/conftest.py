"""Fixtures of the pod tests: a cluster that runs pods, our images in it, the emulator where pods
reach it, and the operator installed from its chart.

Which cluster:
- default: ``PodCluster`` (tgbot_localdev.podcluster): our control plane + kube-scheduler + a real
  node (containerd, runc, CNI bridge, kubelet, kube-proxy), started once per session, with the
  images of ``hack/build-images.sh`` imported into its containerd. Needs root and
  ``hack/install-node-deps.sh``.
- ``USE_EXISTING_CLUSTER=true``: the cluster of ``KUBECONFIG`` (kind, k3d); the images are loaded
  with ``TGBOT_IMAGE_LOADER`` (``kind:NAME``, ``k3d:NAME`` or ``none``) and the emulator listens on
  ``TGBOT_HOST_ADDRESS``, an address of this machine the cluster's pods can reach (the docker
  bridge's gateway for kind/k3d). See docs/test-cluster.md.

Every test here is marked ``pods`` (by folder).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import Cluster
from tgbot_localdev.controlplane import find_assets
from tgbot_localdev.emulatorproc import Emulator
from tgbot_localdev.images import Image, build_images, load_into_existing_cluster
from tgbot_localdev.releases import BotRelease, OperatorRelease

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
NODE_DEPS = REPO_ROOT / "hack" / "install-node-deps.sh"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The demo starts its own pod cluster: before the session's (one per machine at a time).
    items.sort(key=lambda item: item.path.name != "test_demo_pods.py")
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.pods)
            item.add_marker(pytest.mark.slow)
            # The first test also pays for the session: cluster start, image import, operator install.
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(900))


@dataclass
class PodTestCluster(Cluster):
    """A cluster whose pods run, plus what the tests need to know about it."""

    images: dict[str, Image] = field(default_factory=dict)
    #: An address of this machine that pods reach (the node's bridge); the emulator binds to it.
    host_address: str = ""
    #: Folder of helm (Helm 4) and helm3.
    helm_folder: Path = field(default_factory=Path)
    existing: bool = False


def _use_existing_cluster() -> bool:
    return os.environ.get("USE_EXISTING_CLUSTER", "").lower() in {"1", "true", "yes"}


def _helm_env(env: dict[str, str], home: Path) -> dict[str, str]:
    env = dict(env)
    env["HELM_CACHE_HOME"] = str(home / "helm-cache")
    env["HELM_CONFIG_HOME"] = str(home / "helm-config")
    env["HELM_DATA_HOME"] = str(home / "helm-data")
    return env


@pytest.fixture(scope="session")
def pod_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodTestCluster]:
    home = tmp_path_factory.mktemp("pods")
    if _use_existing_cluster():
        host_address = os.environ.get("TGBOT_HOST_ADDRESS", "")
        if not host_address:
            pytest.fail(
                "USE_EXISTING_CLUSTER=true pod tests need TGBOT_HOST_ADDRESS (see docs/test-cluster.md)"
            )
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        images = build_images(sys.stderr)
        load_into_existing_cluster(images)
        helm = shutil.which("helm")
        yield PodTestCluster(
            kubeconfig=kubeconfig,
            env=_helm_env(dict(os.environ, KUBECONFIG=str(kubeconfig)), home),
            server="",
            images=images,
            host_address=host_address,
            helm_folder=Path(helm).parent if helm else Path(),
            existing=True,
        )
        return

    from tgbot_localdev.podcluster import PodCluster  # root-only machinery, only when used

    if os.environ.get("TGBOT_SKIP_PODS"):
        pytest.skip(os.environ["TGBOT_SKIP_PODS"])
    if os.geteuid() != 0:
        pytest.skip(
            "pod tests need root (containerd, network namespaces, iptables): see docs/test-cluster.md"
        )

    if subprocess.run([str(NODE_DEPS), "--check"], capture_output=True, check=False).returncode != 0:
        pytest.fail(f"the pod node's packages are missing: run {NODE_DEPS}")
    assets = find_assets(sys.stderr)
    images = build_images(sys.stderr)
    cluster = PodCluster(assets=assets, images=images)
    cluster.start()
    try:
        yield PodTestCluster(
            kubeconfig=cluster.kubeconfig,
            env=_helm_env(cluster.env(), home),
            server=cluster.server,
            images=images,
            host_address=cluster.node_ip,
            helm_folder=assets,
        )
    finally:
        cluster.stop()
        assert cluster.node is not None
        leftovers = cluster.node.leftovers()
        assert not leftovers, f"the pod cluster left things behind: {leftovers}"


@pytest.fixture(scope="session")
def emulator(pod_cluster: PodTestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The Bot API emulator as a process on this machine, on the address pods reach."""
    with Emulator.start(pod_cluster.host_address, tmp_path_factory.mktemp("emulator")) as emu:
        yield emu


@pytest.fixture(scope="session")
def operator_release(pod_cluster: PodTestCluster, emulator: Emulator) -> Iterator[OperatorRelease]:
    """The operator chart installed with our image, allowed to talk to the emulator only."""
    release = OperatorRelease.install(pod_cluster, emulator, helm="helm")
    try:
        yield release
    finally:
        release.remove()


@pytest.fixture(scope="session")
def shared_bot_release(
    pod_cluster: PodTestCluster, operator_release: OperatorRelease, emulator: Emulator
) -> Iterator[BotRelease]:
    """One bot release (Helm 4, plain HTTP) for every test that only needs a working bot: each
    install costs a pod start, a registration and a Ready wait. Tests that disturb it (rotation,
    restarts, a scaled-down Deployment) leave it serving again."""
    namespace = f"p-shared-{secrets.token_hex(3)}"
    pod_cluster.kubectl("create", "namespace", namespace)
    bot = emulator.add_bot(f"shared_{secrets.token_hex(3)}_bot")
    release = BotRelease.install(pod_cluster, namespace, bot)
    try:
        yield release
    finally:
        pod_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def pod_namespace(pod_cluster: PodTestCluster) -> Iterator[str]:
    name = f"p-{secrets.token_hex(4)}"
    pod_cluster.kubectl("create", "namespace", name)
    yield name
    pod_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
