"""A one-node Kubernetes cluster that runs pods, on this machine, in one call.

The control plane of ``controlplane.py`` (etcd, kube-apiserver, kube-controller-manager with the
controllers pods need) plus kube-scheduler and a real node (``node.py``: containerd, runc, a CNI
bridge, kubelet, kube-proxy in iptables mode), with our images (``images.py``) imported into the
node's containerd. The API server listens on the node's bridge address (never on loopback only:
pods reach it through the ``kubernetes`` Service, which kube-proxy maps to that address).

    with PodCluster(assets=find_assets()) as cluster:
        subprocess.run(["kubectl", "get", "nodes"], env=cluster.env())
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .clusterdns import ClusterDNS
from .controlplane import ControlPlane, ControlPlaneError, free_port
from .images import Image
from .kubectl import kubectl
from .node import Node, NodeConfig, NodeError
from .processes import LocalProcess, spawn

#: What a Deployment-with-a-Service cluster needs beyond controlplane.py's controllers.
POD_CONTROLLERS = [
    "deployment-controller",
    "replicaset-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "root-ca-certificate-publisher-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
    "job-controller",
    "ttl-after-finished-controller",
    "service-cidr-controller",
]


@dataclass
class PodCluster:
    """Control plane + kube-scheduler + one node; ``stop`` leaves nothing of it behind."""

    assets: Path
    images: Mapping[str, Image] = field(default_factory=dict)
    workdir: Path | None = None
    keep_workdir: bool = False
    start_timeout: float = 180.0
    plane: ControlPlane | None = None
    node: Node | None = None
    _scheduler: LocalProcess | None = None
    _dns: ClusterDNS | None = None
    _own_workdir: bool = False

    def __enter__(self) -> PodCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def kubeconfig(self) -> Path:
        assert self.plane is not None
        return self.plane.kubeconfig

    @property
    def server(self) -> str:
        assert self.plane is not None
        return self.plane.server

    @property
    def node_ip(self) -> str:
        """The node's bridge address: on this machine, and reachable from every pod."""
        assert self.node is not None
        return self.node.node_ip

    def start(self) -> None:
        missing = [
            b
            for b in ("kube-scheduler", "kubelet", "kube-proxy", "kube-controller-manager")
            if not (self.assets / b).exists()
        ]
        if missing:
            raise ControlPlaneError(
                f"{self.assets} lacks {', '.join(missing)}: run hack/build-controlplane.sh"
            )
        if os.geteuid() != 0:
            raise NodeError("a pod node needs root (containerd, network namespaces, iptables)")
        if self.workdir is None:
            # Under /var/tmp, not /tmp: containerd's overlay snapshots do not work on every tmpfs.
            self.workdir = Path(tempfile.mkdtemp(prefix="tgbot-podcluster-", dir="/var/tmp"))
            self._own_workdir = True
        try:
            self.node = Node(assets=self.assets, workdir=self.workdir / "node")
            self.node.workdir.mkdir(parents=True, exist_ok=True)
            node_ip = self.node.prepare_network()
            self._start_control_plane(node_ip)
            self._start_scheduler()
            assert self.plane is not None
            self._dns = ClusterDNS(node_ip, self.plane.env())
            self._dns.start()
            self.node.start(
                NodeConfig(
                    kubeconfig=self.plane.kubeconfig,
                    ca_cert=self.workdir / "controlplane" / "pki" / "ca.crt",
                    node_name=self.node.name,
                    cluster_cidr=str(self.node.pod_subnet),
                    pause_image=self.images["pause"].ref
                    if "pause" in self.images
                    else "tgbot.local/pause:none",
                    cluster_dns=node_ip,
                )
            )
            for image in self.images.values():
                self.node.import_image(image.archive)
            self._wait_node_ready()
        except BaseException:
            self.keep_workdir = True  # the logs of a failed start
            self.stop()
            raise

    def _start_control_plane(self, node_ip: str) -> None:
        assert self.workdir is not None
        pki = self.workdir / "controlplane" / "pki"
        self.plane = ControlPlane(
            assets=self.assets,
            workdir=self.workdir / "controlplane",
            start_timeout=self.start_timeout,
            host=node_ip,
            disabled_admission_plugins="",
            apiserver_args=[
                # The `kubernetes` Service's endpoint is this API server (pods use it in-cluster).
                "--endpoint-reconciler-type=lease",
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={pki / 'admin.crt'}",
                f"--kubelet-client-key={pki / 'admin.key'}",
            ],
            extra_controllers=POD_CONTROLLERS,
        )
        self.plane.start()

    def _start_scheduler(self) -> None:
        assert self.plane is not None
        assert self.workdir is not None
        self._scheduler = spawn(
            "kube-scheduler",
            [
                str(self.assets / "kube-scheduler"),
                f"--kubeconfig={self.plane.kubeconfig}",
                f"--authentication-kubeconfig={self.plane.kubeconfig}",
                f"--authorization-kubeconfig={self.plane.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
            ],
            self.workdir,
        )
        time.sleep(1.0)
        if not self._scheduler.alive():
            raise ControlPlaneError(f"kube-scheduler exited:\n{self._scheduler.tail()}")

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return kubectl(self.env(), *args, check=check, timeout=timeout)

    def _wait_node_ready(self) -> None:
        assert self.node is not None
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            result = self.kubectl("get", "node", self.node.name, "-o", "json", check=False)
            if result.returncode == 0:
                node = json.loads(result.stdout)
                conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
                ready = conditions.get("Ready", {})
                taints = node.get("spec", {}).get("taints") or []
                if ready.get("status") == "True" and not any(t.get("effect") == "NoSchedule" for t in taints):
                    return
                last = f"{ready.get('reason')}: {ready.get('message')}; taints {taints}"
            time.sleep(1)
        raise NodeError(f"node {self.node.name} not Ready after {self.start_timeout:.0f}s ({last})")

    def stop(self) -> None:
        """Pods first (through the kubelet, so CNI and volumes are torn down), then the rest."""
        if self.plane is not None and self.node is not None and self.plane.server:
            self._delete_all_pods()
        if self.node is not None:
            self.node.stop()
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self._dns is not None:
            self._dns.stop()
            self._dns = None
        if self.plane is not None:
            self.plane.stop()
        if self.workdir and self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _delete_all_pods(self, timeout: float = 60) -> None:
        # Controllers would make new pods: scale to nothing by deleting the namespaces' workloads.
        for kind in ("deployments", "replicasets", "jobs"):
            self.kubectl("delete", kind, "--all", "-A", "--wait=false", check=False)
        self.kubectl("delete", "pods", "--all", "-A", "--grace-period=1", "--wait=false", check=False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.kubectl("get", "pods", "-A", "-o", "name", check=False)
            if result.returncode != 0 or not result.stdout.strip():
                return
            time.sleep(1)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        assert self.plane is not None
        return self.plane.env(base)

    def logs(self) -> Iterator[tuple[str, str]]:
        if self.plane is not None:
            yield from self.plane.logs()
        if self._scheduler is not None:
            yield self._scheduler.name, self._scheduler.tail(200)
        if self.node is not None:
            yield from self.node.logs()
