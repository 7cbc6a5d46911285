"""A real Kubernetes node on this machine: containerd + runc + CNI bridge, kubelet and kube-proxy.

Everything it makes has a name or path of its own (a random bridge, pod subnet, ports, a temp
folder for containerd's root/state/socket, kubelet's root and pod logs, CNI config and IPAM data),
and ``stop`` removes exactly that: pods, containerd's shims, mounts, network namespaces, the
bridge and the iptables rules. Two things are machine-wide: kube-proxy's iptables chains and
kubelet's QoS cgroups (``/kubepods``), so only one node runs on a machine at a time (a lock file
says so clearly instead of letting two fight).

Needs root, cgroup v1 or v2, Debian's containerd/runc/containernetworking-plugins/iptables
(``hack/install-node-deps.sh``) and kubelet/kube-proxy from our build. What this machine kind
lacks and how the config copes (cgroup v1, no CAP_SYS_RESOURCE, no dummy interfaces) is in
docs/test-cluster.md.

Traffic stays inside the machine: the pods' bridge forwards nothing to other interfaces (an
iptables rule of ours drops it) and there is no masquerading.

Longer than ~300 lines on purpose: start and stop of one node in one place, so that the order that
leaves nothing behind reads in one sitting. The configuration files are in ``nodeconfig.py``, the
clean-up steps in ``nodecleanup.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import nodeconfig
from .controlplane import ControlPlaneError, free_port
from .nodecleanup import (
    cni_del_all,
    kill_shims,
    mount_points,
    pids_with_cmdline,
    remove_kubepods_cgroups,
    unmount_under,
)
from .nodeconfig import NodeLayout, cni_conflist, containerd_config, kube_proxy_config
from .processes import LocalProcess, http_ok, spawn, wait_ready

CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
NETNS_DIR = Path("/var/run/netns")
LOCK_FILE = Path("/run/tgbot-pod-node.lock")
#: Where the pod subnets are drawn from: 10.200.0.0/16 .. 10.239.0.0/16, one /24 per node.
_POD_SUPERNET = ipaddress.IPv4Network("10.200.0.0/13")


class NodeError(ControlPlaneError):
    """The node could not be set up, started or cleaned up."""


def find_cni_bin_dir() -> Path:
    for folder in CNI_BIN_DIRS:
        if (folder / "bridge").exists() and (folder / "host-local").exists():
            return folder
    raise NodeError("CNI plugins not found (bridge, host-local): run hack/install-node-deps.sh")


def _run(*argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _used_networks() -> list[ipaddress.IPv4Network]:
    routes = _run("ip", "-4", "-j", "route", "show", "table", "all", check=False).stdout or "[]"
    nets = []
    for route in json.loads(routes):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst, strict=False))
    return nets


def pick_pod_subnet() -> ipaddress.IPv4Network:
    """A random /24 of 10.200.0.0/13 that no route of this machine overlaps."""
    used = _used_networks()
    subnets = list(_POD_SUPERNET.subnets(new_prefix=24))
    for _ in range(200):
        candidate = random.choice(subnets)  # noqa: S311 - not a secret, just spread
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise NodeError("no free /24 in 10.200.0.0/13 for the pod network")


@dataclass
class NodeConfig:
    """The control plane's side of the node: where to register, which certificates to use."""

    kubeconfig: Path
    ca_cert: Path
    node_name: str
    cluster_cidr: str
    pause_image: str
    #: The cluster DNS server's address (kubelet's clusterDNS), if one runs.
    cluster_dns: str | None = None


@dataclass
class Node:
    """containerd + kubelet + kube-proxy on a bridge of their own."""

    assets: Path
    workdir: Path
    start_timeout: float = 120.0
    #: How long to wait for another run's node (the machine-wide lock) before giving up.
    lock_timeout: float = 600.0
    #: The control plane's --service-cluster-ip-range.
    service_cidr: str = "10.0.0.0/24"
    name: str = ""
    bridge: str = ""
    pod_subnet: ipaddress.IPv4Network = field(default_factory=lambda: ipaddress.IPv4Network("0.0.0.0/32"))
    node_ip: str = ""
    containerd_socket: Path = field(default_factory=Path)
    _processes: list[LocalProcess] = field(default_factory=list)
    _lock: IO[str] | None = None
    _chain: str = ""
    _netns_before: set[str] = field(default_factory=set)
    _bridge_made: bool = False

    # --- the network, before anything else: the API server binds to the node's address ----------
    def prepare_network(self) -> str:
        """Take the machine's node lock, make the bridge with the node IP; returns that IP."""
        self._take_lock()
        suffix = secrets.token_hex(3)
        self.name = self.name or f"tgbot-node-{suffix}"
        self.bridge = f"tgbr{suffix}"
        self._chain = f"TGBOT-{suffix.upper()}"
        self.pod_subnet = pick_pod_subnet()
        gateway = next(self.pod_subnet.hosts())
        self.node_ip = str(gateway)
        # The CNI bridge itself, made before any pod: its gateway address is the node IP (the
        # API server, the kubelet and the emulator bind to it; pods reach it as their gateway).
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        _run("ip", "addr", "add", f"{gateway}/{self.pod_subnet.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        # ClusterIPs go to the bridge too: kube-proxy rewrites them to pods, and one without a
        # rule (no Service, no endpoints) ends on the bridge instead of the default route.
        service_net = ipaddress.IPv4Network(self.service_cidr)
        clash = [str(n) for n in _used_networks() if n.overlaps(service_net) and n != self.pod_subnet]
        if clash:
            raise NodeError(f"the Service network {service_net} overlaps this machine's routes {clash}")
        _run("ip", "route", "add", str(service_net), "dev", self.bridge, "src", self.node_ip)
        self._netns_before = set(os.listdir(NETNS_DIR)) if NETNS_DIR.exists() else set()
        return self.node_ip

    def _take_lock(self) -> None:
        """One node per machine: wait (up to ``lock_timeout``) for another run's node to stop."""
        lock = LOCK_FILE.open("a+")
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.seek(0)
                    owner = lock.read().strip()
                    lock.close()
                    raise NodeError(
                        f"another pod test node runs on this machine ({owner}) for more than "
                        f"{self.lock_timeout:.0f}s; kube-proxy's iptables chains are machine-wide, "
                        "so one at a time"
                    ) from None
                time.sleep(2)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, {self.workdir}\n")
        lock.flush()
        self._lock = lock

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, config: NodeConfig) -> None:
        try:
            self._start_containerd(config)
            self._start_kubelet(config)
            self._start_kube_proxy(config)
            self._isolate_bridge()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop what we started and remove what we made (safe to call twice)."""
        self._stop_pods_through_cri()
        for process in reversed(self._processes):
            process.stop(timeout=20)
        kube_proxy = [p for p in self._processes if p.name == "kube-proxy"]
        self._processes.clear()
        if kube_proxy:
            # Removes every KUBE-* chain and rule it made (the same ones another kube-proxy would).
            _run(str(self.assets / "kube-proxy"), "--cleanup", "--proxy-mode=iptables", check=False)
        kill_shims(self.containerd_socket)
        unmount_under(self.workdir)
        self._delete_netns()
        self._remove_isolation()
        if self._bridge_made:
            _run("ip", "link", "delete", self.bridge, check=False)
            self._bridge_made = False
        remove_kubepods_cgroups()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # --- containerd ------------------------------------------------------------------------------
    @property
    def layout(self) -> NodeLayout:
        return NodeLayout(self.workdir, self.bridge, self.pod_subnet, self.node_ip)

    def _containerd_config(self, config: NodeConfig) -> Path:
        layout = self.layout
        layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        (layout.cni_conf_dir / "10-bridge.conflist").write_text(json.dumps(cni_conflist(layout)))
        self.containerd_socket = layout.containerd_socket
        layout.containerd_base.mkdir(parents=True, exist_ok=True)
        path = layout.containerd_base / "config.toml"
        path.write_text(containerd_config(layout, config.pause_image, find_cni_bin_dir()))
        return path

    def _start_containerd(self, config: NodeConfig) -> None:
        path = self._containerd_config(config)
        containerd = self._spawn(
            "containerd", [shutil.which("containerd") or "containerd", "--config", str(path)]
        )
        self._wait(containerd, lambda: self.ctr("version", check=False).returncode == 0)

    def ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``ctr`` against our containerd, in the CRI's namespace (k8s.io)."""
        return _run(
            "ctr",
            "--address",
            str(self.containerd_socket),
            "-n",
            "k8s.io",
            *args,
            check=check,
            timeout=timeout,
        )

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", "--no-unpack=false", str(archive))

    # --- kubelet ---------------------------------------------------------------------------------
    def _start_kubelet(self, config: NodeConfig) -> None:
        root = self.workdir / "kubelet"
        root.mkdir(parents=True, exist_ok=True)
        healthz_port = free_port()
        kubelet_config = nodeconfig.kubelet_config(
            self.layout,
            ca_cert=config.ca_cert,
            port=free_port(),
            healthz_port=healthz_port,
            cluster_dns=config.cluster_dns,
        )
        config_path = root / "config.yaml"
        config_path.write_text(json.dumps(kubelet_config))
        kubelet = self._spawn(
            "kubelet",
            [
                str(self.assets / "kubelet"),
                f"--config={config_path}",
                f"--kubeconfig={config.kubeconfig}",
                f"--root-dir={root}",
                f"--cert-dir={root / 'pki'}",
                f"--hostname-override={config.node_name}",
                f"--node-ip={self.node_ip}",
                "--v=1",
            ],
        )
        self._wait(kubelet, lambda: http_ok(f"http://127.0.0.1:{healthz_port}/healthz"))

    # --- kube-proxy ------------------------------------------------------------------------------
    def _start_kube_proxy(self, config: NodeConfig) -> None:
        healthz_port = free_port()
        proxy_config = kube_proxy_config(
            self.layout,
            kubeconfig=config.kubeconfig,
            node_name=config.node_name,
            cluster_cidr=config.cluster_cidr,
            healthz_port=healthz_port,
            metrics_port=free_port(),
        )
        path = self.workdir / "kube-proxy.yaml"
        path.write_text(json.dumps(proxy_config))
        proxy = self._spawn("kube-proxy", [str(self.assets / "kube-proxy"), f"--config={path}", "--v=1"])
        self._wait(proxy, lambda: http_ok(f"http://127.0.0.1:{healthz_port}/healthz"))

    # --- isolation: nothing leaves the machine from the pod bridge ---------------------------------
    def _isolate_bridge(self) -> None:
        _run("iptables", "-w", "-N", self._chain)
        _run("iptables", "-w", "-A", self._chain, "-i", self.bridge, "!", "-o", self.bridge, "-j", "DROP")
        _run("iptables", "-w", "-A", self._chain, "!", "-i", self.bridge, "-o", self.bridge, "-j", "DROP")
        _run("iptables", "-w", "-I", "FORWARD", "1", "-j", self._chain)

    def _remove_isolation(self) -> None:
        if not self._chain:
            return
        _run("iptables", "-w", "-D", "FORWARD", "-j", self._chain, check=False)
        _run("iptables", "-w", "-F", self._chain, check=False)
        _run("iptables", "-w", "-X", self._chain, check=False)

    # --- clean-up, in the order that leaves nothing behind -----------------------------------------
    def _stop_pods_through_cri(self) -> None:
        """Stop and remove every pod sandbox through containerd (CNI DEL frees IPs and netns)."""
        if not any(p.name == "containerd" and p.alive() for p in self._processes):
            return
        kubelet = next((p for p in self._processes if p.name == "kubelet"), None)
        if kubelet is not None:
            kubelet.stop(timeout=20)  # else it restarts what we stop
        tasks = self.ctr("tasks", "list", "-q", check=False).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            listing = self.ctr("tasks", "list", check=False).stdout.splitlines()[1:]
            if all("STOPPED" in line for line in listing):
                break
            time.sleep(0.5)
        for task in tasks:
            self.ctr("tasks", "delete", "--force", task, check=False, timeout=30)
        containers = self.ctr("containers", "list", "-q", check=False).stdout.split()
        if containers:
            self.ctr("containers", "delete", *containers, check=False, timeout=60)
        self._cni_del_all()

    def _cni_del_all(self) -> None:
        netns_root = self.workdir / "containerd" / "state" / "io.containerd.grpc.v1.cri" / "netns"
        cni_del_all(netns_root, cni_conflist(self.layout), find_cni_bin_dir())

    def _delete_netns(self) -> None:
        if not NETNS_DIR.exists():
            return
        for name in set(os.listdir(NETNS_DIR)) - self._netns_before:
            if name.startswith("cni-"):
                _run("ip", "netns", "delete", name, check=False)

    # --- helpers ---------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> LocalProcess:
        process = spawn(name, argv, self.workdir)
        self._processes.append(process)
        return process

    def _wait(self, process: LocalProcess, probe: Callable[[], bool]) -> None:
        wait_ready(process, probe, self.start_timeout, NodeError)

    def logs(self) -> Iterator[tuple[str, str]]:
        for process in self._processes:
            yield process.name, process.tail(200)

    def leftovers(self) -> list[str]:
        """What of ours is still on the machine (empty after a clean stop)."""
        found = []
        if self.bridge and Path(f"/sys/class/net/{self.bridge}").exists():
            found.append(f"bridge {self.bridge}")
        prefix = str(self.workdir.resolve()) + "/"
        found += [f"mount {m}" for m in mount_points() if m.startswith(prefix)]
        address = str(self.containerd_socket)
        found += [f"pid {pid}" for pid in pids_with_cmdline(lambda argv: address in argv)]
        if self._chain and _run("iptables", "-w", "-n", "-L", self._chain, check=False).returncode == 0:
            found.append(f"iptables chain {self._chain}")
        if NETNS_DIR.exists():
            found += [
                f"netns {n}" for n in set(os.listdir(NETNS_DIR)) - self._netns_before if n.startswith("cni-")
            ]
        return found
