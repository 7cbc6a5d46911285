"""An envtest-style Kubernetes control plane on loopback: etcd, kube-apiserver
(RBAC on) and kube-controller-manager (namespace deletion, garbage collection,
ServiceAccounts). No kubelet: pods are stored but never run.

Binaries come from ``KUBEBUILDER_ASSETS`` when set (the controller-runtime
envtest convention), else from the cache that ``hack/build-controlplane.sh``
fills (building them from Go modules the first time).

The control plane stops only the processes it started.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .pki import Pki, make_pki
from .processes import LocalProcess, http_ok, spawn, wait_ready

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-controlplane.sh"
REQUIRED = ("etcd", "kube-apiserver", "kubectl")
#: Re-exported for benchmarks/processes.py, which imports it from here.
__all__ = ["ControlPlane", "ControlPlaneError", "LocalProcess", "find_assets", "free_port"]


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started."""


def build_assets(stream: IO[str] | None = None) -> Path:
    """Build (or find in the cache) the binaries; returns their folder."""
    if not BUILD_SCRIPT.exists():
        raise ControlPlaneError(f"{BUILD_SCRIPT} not found: run from a checkout of telegram-bot-operator")
    result = subprocess.run(
        [str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=stream, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


def assets_are_built() -> bool:
    """True when ``KUBEBUILDER_ASSETS`` is set or our cache already holds the binaries."""
    if os.environ.get("KUBEBUILDER_ASSETS"):
        return True
    return subprocess.run([str(BUILD_SCRIPT), "--check"], capture_output=True, check=False).returncode == 0


def find_assets(stream: IO[str] | None = None) -> Path:
    """``KUBEBUILDER_ASSETS`` when set, else our cached (or freshly built) binaries."""
    given = os.environ.get("KUBEBUILDER_ASSETS")
    folder = Path(given) if given else build_assets(stream)
    missing = [name for name in REQUIRED if not (folder / name).exists()]
    if missing:
        raise ControlPlaneError(f"{folder} lacks {', '.join(missing)} (from KUBEBUILDER_ASSETS={given!r})")
    return folder


def free_port() -> int:
    """A port that was free a moment ago (racy by nature, like envtest's)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager when its binary exists)."""

    assets: Path
    workdir: Path | None = None
    start_timeout: float = 120.0
    keep_workdir: bool = False
    server: str = ""
    kubeconfig: Path = field(default_factory=Path)
    with_controller_manager: bool = False
    #: The API server's address (a pod node's bridge IP, so pods can reach it); etcd stays on loopback.
    host: str = "127.0.0.1"
    #: Appended to kube-apiserver's flags (a later scalar flag wins).
    apiserver_args: list[str] = field(default_factory=list)
    #: A pod cluster needs the ServiceAccount admission plugin (token volumes): set to "".
    disabled_admission_plugins: str = "ServiceAccount"
    #: More kube-controller-manager controllers (deployments, endpoint slices, ...).
    extra_controllers: list[str] = field(default_factory=list)
    _processes: list[LocalProcess] = field(default_factory=list)
    _own_workdir: bool = False

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="tgbot-controlplane-"))
            self._own_workdir = True
        try:
            pki = make_pki(self.workdir / "pki", [self.host] if self.host != "127.0.0.1" else [])
            etcd_url = self._start_etcd()
            self._start_apiserver(pki, etcd_url)
            self.kubeconfig = self._write_kubeconfig(pki)
            if (self.assets / "kube-controller-manager").exists():
                self._start_controller_manager(pki)
        except BaseException:
            self.keep_workdir = True  # keep logs of a failed start
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self.workdir and self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- pieces --------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> LocalProcess:
        assert self.workdir is not None
        process = spawn(name, [str(self.assets / name), *args], self.workdir)
        self._processes.append(process)
        return process

    def _wait(self, process: LocalProcess, probe: Callable[[], bool]) -> None:
        wait_ready(process, probe, self.start_timeout, ControlPlaneError)

    def _start_etcd(self) -> str:
        assert self.workdir is not None
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        etcd = self._spawn(
            "etcd",
            [
                "--name=controlplane",
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=controlplane={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait(etcd, lambda: http_ok(f"{client_url}/health"))
        return client_url

    def _start_apiserver(self, pki: Pki, etcd_url: str) -> None:
        assert self.workdir is not None
        port = free_port()
        self.server = f"https://{self.host}:{port}"
        apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.host}",
                f"--secure-port={port}",
                f"--advertise-address={self.host}",
                # No kubelet and no real Service network: don't reconcile the
                # `kubernetes` Endpoints, which only logs errors on loopback.
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.workdir / 'pki'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_public_key}",
                f"--service-account-signing-key-file={pki.sa_private_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                f"--disable-admission-plugins={self.disabled_admission_plugins}",
                *self.apiserver_args,
            ],
        )
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        self._wait(apiserver, lambda: http_ok(f"{self.server}/readyz", context))

    def _start_controller_manager(self, pki: Pki) -> None:
        controllers = [
            "namespace-controller",
            "garbage-collector-controller",
            "serviceaccount-controller",
            "serviceaccount-token-controller",
            *self.extra_controllers,
        ]
        kcm = self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--controllers={','.join(controllers)}",
                f"--service-account-private-key-file={pki.sa_private_key}",
                f"--root-ca-file={pki.ca_cert}",
                "--use-service-account-credentials=false",
            ],
        )
        # It has no readiness endpoint worth the wait: check it did not die at once.
        time.sleep(1.0)
        if not kcm.alive():
            raise ControlPlaneError(f"kube-controller-manager exited:\n{kcm.tail()}")
        self.with_controller_manager = True

    def _write_kubeconfig(self, pki: Pki) -> Path:
        assert self.workdir is not None

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        path = self.workdir / "kubeconfig"
        path.write_text(
            f"""apiVersion: v1
kind: Config
clusters:
- name: tgbot-test
  cluster:
    server: {self.server}
    certificate-authority-data: {b64(pki.ca_cert)}
users:
- name: admin
  user:
    client-certificate-data: {b64(pki.admin_cert)}
    client-key-data: {b64(pki.admin_key)}
contexts:
- name: tgbot-test
  context: {{cluster: tgbot-test, user: admin, namespace: default}}
current-context: tgbot-test
"""
        )
        path.chmod(0o600)
        return path

    # --- using it ------------------------------------------------------------
    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment whose ``kubectl``/``helm`` talk to this control plane."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.assets}{os.pathsep}{env.get('PATH', '')}"
        return env

    def logs(self) -> Iterator[tuple[str, str]]:
        for process in self._processes:
            yield process.name, process.tail(200)
