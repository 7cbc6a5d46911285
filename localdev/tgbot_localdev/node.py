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
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .controlplane import ControlPlaneError, LocalProcess, free_port

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
        self._kill_our_shims()
        self._unmount_under(self.workdir)
        self._delete_netns()
        self._remove_isolation()
        if self._bridge_made:
            _run("ip", "link", "delete", self.bridge, check=False)
            self._bridge_made = False
        self._remove_cgroups()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # --- containerd ------------------------------------------------------------------------------
    def _containerd_config(self, config: NodeConfig) -> Path:
        base = self.workdir / "containerd"
        cni_conf = self.workdir / "cni" / "net.d"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-bridge.conflist").write_text(json.dumps(self._cni_conflist()))
        self.containerd_socket = base / "containerd.sock"
        text = f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{base / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{config.pause_image}"
  # No CAP_SYS_RESOURCE here: runc may not lower oom_score_adj below the current value.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{find_cni_bin_dir()}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "{base / "runc"}"
        SystemdCgroup = false
"""
        path = base / "config.toml"
        base.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def _cni_conflist(self) -> dict[str, object]:
        return {
            "cniVersion": "1.0.0",
            "name": self.bridge,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    # No masquerading: pods talk only to this machine and to each other.
                    "ipMasq": False,
                    # A pod reaching itself through its own Service (kube-proxy DNAT).
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                        "ranges": [[{"subnet": str(self.pod_subnet), "gateway": self.node_ip}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
            ],
        }

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
        kubelet_config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This machine mounts cgroup v1; kubelet 1.35+ refuses it unless told otherwise.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "address": self.node_ip,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz_port,
            # The API server (kubectl logs/exec) authenticates with the admin client certificate.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(config.ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "podLogsDir": str(self.workdir / "pod-logs"),
            "volumePluginDir": str(self.workdir / "volume-plugins"),
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": [],
            # Our images were imported, not pulled: never garbage-collect them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            # Pods resolve only cluster names (clusterdns.py), never anything outside.
            "resolvConf": "",
            **(
                {"clusterDNS": [config.cluster_dns], "clusterDomain": "cluster.local"}
                if config.cluster_dns
                else {}
            ),
            "localStorageCapacityIsolation": False,
            "serializeImagePulls": False,
            # Faster Secret volume updates than the default 1 m sync (rotation tests wait for it).
            "syncFrequency": "10s",
            "nodeStatusUpdateFrequency": "5s",
            "shutdownGracePeriod": "0s",
        }
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
        self._wait(kubelet, lambda: _http_ok(f"http://127.0.0.1:{healthz_port}/healthz"))

    # --- kube-proxy ------------------------------------------------------------------------------
    def _start_kube_proxy(self, config: NodeConfig) -> None:
        healthz_port = free_port()
        proxy_config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(config.kubeconfig)},
            "hostnameOverride": config.node_name,
            "clusterCIDR": config.cluster_cidr,
            "bindAddress": self.node_ip,
            "healthzBindAddress": f"127.0.0.1:{healthz_port}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # Leave the machine's conntrack table size alone (no permission to change it anyway).
            "conntrack": {"maxPerCore": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            "iptables": {"localhostNodePorts": False, "masqueradeAll": False, "syncPeriod": "5s"},
            # NodePorts only on the node's own address, never on the machine's other interfaces.
            "nodePortAddresses": [f"{self.node_ip}/32"],
        }
        path = self.workdir / "kube-proxy.yaml"
        path.write_text(json.dumps(proxy_config))
        proxy = self._spawn("kube-proxy", [str(self.assets / "kube-proxy"), f"--config={path}", "--v=1"])
        self._wait(proxy, lambda: _http_ok(f"http://127.0.0.1:{healthz_port}/healthz"))

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
        """CNI DEL for every netns containerd made (releases IPs, veths and the bridge ports)."""
        netns_root = self.workdir / "containerd" / "state" / "io.containerd.grpc.v1.cri" / "netns"
        if not netns_root.exists():
            return
        bin_dir = find_cni_bin_dir()
        conflist = self._cni_conflist()
        plugins = conflist["plugins"]
        assert isinstance(plugins, list)
        for netns in netns_root.iterdir():
            for plugin in reversed(plugins):
                conf = dict(plugin, cniVersion=conflist["cniVersion"], name=conflist["name"])
                env = dict(
                    os.environ,
                    CNI_COMMAND="DEL",
                    CNI_CONTAINERID=netns.name,
                    CNI_NETNS=str(netns),
                    CNI_IFNAME="eth0",
                    CNI_PATH=str(bin_dir),
                )
                subprocess.run(
                    [str(bin_dir / str(plugin["type"]))],
                    input=json.dumps(conf),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )

    def _kill_our_shims(self) -> None:
        """containerd-shim-runc-v2 processes started for our containerd (their -address says so)."""
        address = str(self.containerd_socket)
        if not address or address == ".":
            return
        for pid in _pids_with_cmdline(lambda argv: "containerd-shim" in argv[0] and address in argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _unmount_under(self, folder: Path) -> None:
        prefix = str(folder.resolve()) + "/"
        for _ in range(3):
            mounts = [m for m in _mount_points() if m.startswith(prefix)]
            if not mounts:
                return
            for mount in sorted(mounts, key=len, reverse=True):
                _run("umount", "--lazy", mount, check=False)

    def _delete_netns(self) -> None:
        if not NETNS_DIR.exists():
            return
        for name in set(os.listdir(NETNS_DIR)) - self._netns_before:
            if name.startswith("cni-"):
                _run("ip", "netns", "delete", name, check=False)

    def _remove_cgroups(self) -> None:
        """kubelet's QoS cgroups (``kubepods``), once empty; deepest first."""
        root = Path("/sys/fs/cgroup")
        tops = (
            [root / "kubepods"] if (root / "cgroup.controllers").exists() else list(root.glob("*/kubepods"))
        )
        for top in tops:
            if not top.is_dir():
                continue
            for path in sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                with contextlib.suppress(OSError):
                    path.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()

    # --- helpers ---------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> LocalProcess:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        process = LocalProcess(name, popen, log)
        self._processes.append(process)
        return process

    def _wait(self, process: LocalProcess, probe: object) -> None:
        assert callable(probe)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise NodeError(f"{process.name} exited:\n{process.tail()}")
            if probe():
                return
            time.sleep(0.25)
        raise NodeError(f"{process.name} not ready after {self.start_timeout:.0f}s:\n{process.tail()}")

    def logs(self) -> Iterator[tuple[str, str]]:
        for process in self._processes:
            yield process.name, process.tail(200)

    def leftovers(self) -> list[str]:
        """What of ours is still on the machine (empty after a clean stop)."""
        found = []
        if self.bridge and Path(f"/sys/class/net/{self.bridge}").exists():
            found.append(f"bridge {self.bridge}")
        prefix = str(self.workdir.resolve()) + "/"
        found += [f"mount {m}" for m in _mount_points() if m.startswith(prefix)]
        address = str(self.containerd_socket)
        found += [f"pid {pid}" for pid in _pids_with_cmdline(lambda argv: address in argv)]
        if self._chain and _run("iptables", "-w", "-n", "-L", self._chain, check=False).returncode == 0:
            found.append(f"iptables chain {self._chain}")
        if NETNS_DIR.exists():
            found += [
                f"netns {n}" for n in set(os.listdir(NETNS_DIR)) - self._netns_before if n.startswith("cni-")
            ]
        return found


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            # The mount point is the 5th field, with spaces etc. octal-escaped.
            points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def _pids_with_cmdline(match: object) -> list[int]:
    assert callable(match)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if words and match(words):
            pids.append(int(entry.name))
    return pids


def _http_ok(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
