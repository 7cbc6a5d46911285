"""Helm releases of our two charts on a cluster that runs pods, with our images and the emulator.

The pod tests (tests/pods) and ``tgbot-demo --pods`` install the charts the same way: the operator
chart allowed to talk to the emulator only, the bot chart with the echo-bot and sidecar images on
a fixed ClusterIP, its bot talking to the emulator through the chart's ``telegramBot.botApiServer``
(the chart passes it to the bot as ``BOT_API_SERVER``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .emulatorproc import Bot, Emulator
from .images import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR_CHART = REPO_ROOT / "charts" / "telegram-bot-operator"
BOT_CHART = REPO_ROOT / "charts" / "telegram-bot"
#: The operator's timing here: rotation in tens of seconds, not minutes.
OPERATOR_TIMING = {
    "tokenCheckInterval": "5s",
    "checkInterval": "60s",
    # Longer than the kubelet's Secret volume update (its sync period is 10 s on our node).
    "rotationPropagationGrace": "30s",
    "rotationRetireGrace": "20s",
    "deletionTimeout": "60s",
}


class ReleaseError(RuntimeError):
    """helm failed; the message carries its stderr and, for installs, the namespace's pods."""


class PodTarget(Protocol):
    """A cluster whose pods run (``PodCluster`` behind it, or kind/k3d) and what releases need."""

    @property
    def env(self) -> dict[str, str]: ...
    @property
    def images(self) -> Mapping[str, Image]: ...
    @property
    def host_address(self) -> str:
        """An address of this machine that pods reach; the emulator listens on it."""

    @property
    def helm_folder(self) -> Path:
        """Folder of ``helm`` (Helm 4) and ``helm3``; a command not found there is looked up on PATH."""

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...


def helm(
    target: PodTarget, command: str, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    binary = target.helm_folder / command if (target.helm_folder / command).exists() else Path(command)
    result = subprocess.run(
        [str(binary), *args], env=target.env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise ReleaseError(
            f"{command} {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


@contextlib.contextmanager
def values_file(values: Mapping[str, Any]) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="values-", suffix=".json")
    with os.fdopen(fd, "w") as stream:
        json.dump(values, stream)
    try:
        yield Path(name)
    finally:
        os.unlink(name)


def kube_json(target: PodTarget, *args: str) -> Any:
    return json.loads(target.kubectl(*args, "-o", "json").stdout)


def debug_dump(target: PodTarget, namespace: str) -> str:
    """Pods, events and container logs of a namespace, for a failure message."""
    parts = [target.kubectl("get", "pods,events", "-n", namespace, "-o", "wide", check=False).stdout]
    for pod in kube_json(target, "get", "pods", "-n", namespace).get("items", []):
        for c in pod["spec"]["containers"]:
            logs = target.kubectl(
                "logs", "-n", namespace, pod["metadata"]["name"], "-c", c["name"], "--tail=40", check=False
            )
            parts.append(f"--- {pod['metadata']['name']}/{c['name']}\n{logs.stdout}{logs.stderr}")
    return "\n".join(parts)[-8000:]


def _image_values(image: Image) -> dict[str, str]:
    return {"repository": image.repository, "tag": image.tag}


def _install(
    target: PodTarget, command: str, namespace: str, args: list[str], values: Mapping[str, Any]
) -> None:
    with values_file(values) as path:
        try:
            helm(target, command, *args, "-n", namespace, "-f", str(path))
        except ReleaseError as error:
            raise ReleaseError(f"{error}\n{debug_dump(target, namespace)}") from None


def _helm_test_values(target: PodTarget) -> dict[str, Any]:
    # The `helm test` pods' image: built here (no registry), unlike the charts' default.
    if "curl" not in target.images:
        return {}
    return {"helmTest": {"image": _image_values(target.images["curl"])}}


@dataclass
class Release:
    target: PodTarget
    namespace: str
    name: str
    helm: str
    #: The chart's label of the release's own pods (not its `helm test` pod).
    component: ClassVar[str] = ""

    def pods(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={self.component}"
        items: list[dict[str, Any]] = kube_json(
            self.target, "get", "pods", "-n", self.namespace, "-l", selector
        )["items"]
        return items

    def test(self, timeout: str = "3m") -> str:
        """``helm test``: its output (the hook pods' names and phases)."""
        args = ["test", self.name, "-n", self.namespace, "--timeout", timeout, "--logs"]
        try:
            return helm(self.target, self.helm, *args).stdout
        except ReleaseError as error:
            raise ReleaseError(f"{error}\n{debug_dump(self.target, self.namespace)}") from None

    def uninstall(self, timeout: str = "3m") -> None:
        helm(
            self.target,
            self.helm,
            "uninstall",
            self.name,
            "-n",
            self.namespace,
            "--wait",
            "--timeout",
            timeout,
        )


@dataclass
class OperatorRelease(Release):
    component: ClassVar[str] = "operator"

    @classmethod
    def install(cls, target: PodTarget, emulator: Emulator, helm: str = "helm") -> OperatorRelease:
        namespace = f"tgbot-system-{secrets.token_hex(3)}"
        values = {
            "image": _image_values(target.images["tgbot-operator"]),
            "operator": {"allowBotApiServers": [emulator.url], "logLevel": "debug", **OPERATOR_TIMING},
            **_helm_test_values(target),
        }
        release = cls(target, namespace, "tgbot-operator", helm)
        args = [
            "install",
            release.name,
            str(OPERATOR_CHART),
            "--create-namespace",
            "--wait",
            "--timeout",
            "5m",
        ]
        _install(target, helm, namespace, args, values)
        return release

    @property
    def fullname(self) -> str:
        return f"{self.name}-telegram-bot-operator" if "telegram-bot-operator" not in self.name else self.name

    def remove(self) -> None:
        """Uninstall (whatever state it is in) and drop the namespace."""
        with contextlib.suppress(ReleaseError):
            self.uninstall(timeout="2m")
        self.target.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)


@dataclass
class BotRelease(Release):
    component: ClassVar[str] = "bot"
    bot: Bot
    cluster_ip: str
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def install(
        cls,
        target: PodTarget,
        namespace: str,
        bot: Bot,
        *,
        helm: str = "helm",
        mode: str = "None",
        extra: Mapping[str, Mapping[str, Any]] | None = None,
        wait: bool = True,
        name: str = "echo",
    ) -> BotRelease:
        target.kubectl(
            "create",
            "secret",
            "generic",
            f"{name}-token",
            "-n",
            namespace,
            f"--from-literal=token={bot.token}",
        )
        cluster_ip = free_cluster_ip(target)
        scheme = "https" if mode != "None" else "http"
        values: dict[str, Any] = {
            "bot": {"image": _image_values(target.images["echo-bot"])},
            "sidecar": {
                "image": _image_values(target.images["tgbot-sidecar"]),
                # The emulator delivers from the node's address (the route to Services says so).
                "allowNetworks": [f"{target.host_address}/32"],
            },
            "token": {"secretName": f"{name}-token"},
            "service": {"clusterIP": cluster_ip},
            "telegramBot": {
                # The operator registers the webhook there, and the bot talks to it (BOT_API_SERVER).
                "botApiServer": bot.emulator.url,
                "webhook": {"url": f"{scheme}://{cluster_ip}:8443/webhook", "certificate": {"mode": mode}},
            },
            **_helm_test_values(target),
        }
        values.setdefault("helmTest", {})["emulatorRoundTrip"] = True
        for key, value in (extra or {}).items():
            values.setdefault(key, {}).update(value)
        release = cls(target, namespace, name, helm, bot, cluster_ip, values)
        args = ["install", name, str(BOT_CHART)]
        if wait:
            args += ["--wait", "--timeout", "5m"]
        _install(target, helm, namespace, args, values)
        return release

    @property
    def fullname(self) -> str:
        return f"{self.name}-telegram-bot"


def free_cluster_ip(target: PodTarget) -> str:
    """An address of the Service network that no Service has: beside the ``kubernetes`` Service's
    (10.0.0.1 on our cluster, 10.96.0.1 on kind, 10.43.0.1 on k3d), in .100-.250 of its /24."""
    services = kube_json(target, "get", "services", "-A")["items"]
    used = {s["spec"].get("clusterIP") for s in services}
    (api,) = [
        s
        for s in services
        if s["metadata"]["name"] == "kubernetes" and s["metadata"]["namespace"] == "default"
    ]
    prefix = api["spec"]["clusterIP"].rsplit(".", 1)[0]
    for _ in range(100):
        candidate = f"{prefix}.{random.randint(100, 250)}"  # noqa: S311 - not a secret
        if candidate not in used:
            return candidate
    raise ReleaseError(f"no free ClusterIP in {prefix}.100-250")


def pod_ready_since(pod: Mapping[str, Any]) -> str | None:
    for condition in pod.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready" and condition["status"] == "True":
            return str(condition["lastTransitionTime"])
    return None
