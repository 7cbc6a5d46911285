"""Helpers of the pod tests: the emulator as a process, Helm releases of our charts, waiting for pods."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.pods.conftest import PodTestCluster

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR_CHART = REPO_ROOT / "charts" / "telegram-bot-operator"
BOT_CHART = REPO_ROOT / "charts" / "telegram-bot"
#: The operator's timing for the tests: rotation in tens of seconds, not minutes.
OPERATOR_TIMING = {
    "tokenCheckInterval": "5s",
    "checkInterval": "60s",
    # Longer than the kubelet's Secret volume update (its sync period is 10 s here).
    "rotationPropagationGrace": "30s",
    "rotationRetireGrace": "20s",
    "deletionTimeout": "60s",
}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, interval: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


# --- the emulator ---------------------------------------------------------------------------------
@dataclass
class Emulator:
    """``tgbot-emulator`` on an address of this machine, with a small synchronous control client."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    @contextlib.contextmanager
    def start(cls, host: str, folder: Path) -> Iterator[Emulator]:
        log = folder / "emulator.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tgbot_emulator",
                    f"--listen={host}:0",
                    "--allow-local-webhooks",
                    "--retry-cap=2",
                    "--delivery-timeout=30",
                    "--no-setwebhook-rate-limit",
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 60)
            line = process.stdout.readline().decode() if ready else ""
            if "listening on " not in line:
                raise AssertionError(f"emulator did not start: {line!r}\n{log.read_text()[-2000:]}")
            yield cls(url=line.split("listening on ", 1)[1].strip(), process=process, log=log)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def _call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - our emulator's http URL
            f"{self.url}/_emulator{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our emulator
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"emulator {method} {path}: {error.code} {error.read()[:500]!r}") from None

    def add_bot(self, username: str) -> Bot:
        bot_id = random.randint(10**8, 10**9 - 1)
        token = f"{bot_id}:AA{secrets.token_urlsafe(24)}"
        created = self._call("POST", "/bots", {"token": token, "username": username})
        return Bot(id=int(created["id"]), token=token, username=username, emulator=self)


@dataclass
class Bot:
    id: int
    token: str
    username: str
    emulator: Emulator

    def send(self, text: str, chat_id: int | None = None) -> int:
        body: dict[str, Any] = {"text": text}
        if chat_id is not None:
            body["chat_id"] = chat_id
        return int(self.emulator._call("POST", f"/bots/{self.id}/messages", body)["update_id"])

    def wait_delivered(self, update_ids: list[int], timeout: float = 120) -> None:
        self.emulator._call(
            "POST",
            f"/bots/{self.id}/wait-delivered",
            {"update_ids": update_ids, "timeout": timeout},
            timeout + 10,
        )

    def sent(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.emulator._call("GET", f"/bots/{self.id}/sent")
        return result

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        query = f"?method={method}" if method else ""
        result: list[dict[str, Any]] = self.emulator._call("GET", f"/bots/{self.id}/calls{query}")
        return result

    def webhook(self, reveal_secrets: bool = False) -> dict[str, Any]:
        query = "?reveal_secrets=true" if reveal_secrets else ""
        result: dict[str, Any] = self.emulator._call("GET", f"/bots/{self.id}/webhook{query}")
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.emulator._call("GET", f"/bots/{self.id}/deliveries")
        return result

    def updates(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.emulator._call("GET", f"/bots/{self.id}/updates")
        return result

    def replies(self) -> dict[int, list[str]]:
        """Webhook replies by the update they answered."""
        out: dict[int, list[str]] = {}
        for message in self.sent():
            if message.get("via") == "webhook_reply" and message.get("reply_to_update_id") is not None:
                out.setdefault(int(message["reply_to_update_id"]), []).append(str(message.get("text")))
        return out


# --- Helm releases ----------------------------------------------------------------------------------
def helm(
    cluster: PodTestCluster, command: str, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    binary = cluster.helm_folder / command if (cluster.helm_folder / command).exists() else Path(command)
    result = subprocess.run(
        [str(binary), *args], env=cluster.env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{command} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
        )
    return result


@contextlib.contextmanager
def values_file(values: dict[str, Any]) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="values-", suffix=".json")
    with os.fdopen(fd, "w") as stream:
        json.dump(values, stream)
    try:
        yield Path(name)
    finally:
        os.unlink(name)


def kube_json(cluster: PodTestCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json").stdout)


def debug_dump(cluster: PodTestCluster, namespace: str) -> str:
    """Pods, events and container logs of a namespace, for a failure message."""
    parts = [cluster.kubectl("get", "pods,events", "-n", namespace, "-o", "wide", check=False).stdout]
    for pod in kube_json(cluster, "get", "pods", "-n", namespace).get("items", []):
        for c in pod["spec"]["containers"]:
            logs = cluster.kubectl(
                "logs", "-n", namespace, pod["metadata"]["name"], "-c", c["name"], "--tail=40", check=False
            )
            parts.append(f"--- {pod['metadata']['name']}/{c['name']}\n{logs.stdout}{logs.stderr}")
    return "\n".join(parts)[-8000:]


@dataclass
class OperatorRelease:
    cluster: PodTestCluster
    namespace: str
    name: str
    helm: str

    @classmethod
    def install(cls, cluster: PodTestCluster, emulator: Emulator, helm: str = "helm") -> OperatorRelease:
        namespace = f"tgbot-system-{secrets.token_hex(3)}"
        image = cluster.images["tgbot-operator"]
        values = {
            "image": {"repository": image.repository, "tag": image.tag},
            "operator": {"allowBotApiServers": [emulator.url], "logLevel": "debug", **OPERATOR_TIMING},
        }
        if "curl" in cluster.images:  # the `helm test` pod's image, built here (no registry)
            curl = cluster.images["curl"]
            values["helmTest"] = {"image": {"repository": curl.repository, "tag": curl.tag}}
        release = cls(cluster, namespace, "tgbot-operator", helm)
        with values_file(values) as path:
            try:
                globals()["helm"](
                    cluster,
                    helm,
                    "install",
                    release.name,
                    str(OPERATOR_CHART),
                    "-n",
                    namespace,
                    "--create-namespace",
                    "-f",
                    str(path),
                    "--wait",
                    "--timeout",
                    "5m",
                )
            except AssertionError as error:
                raise AssertionError(f"{error}\n{debug_dump(cluster, namespace)}") from None
        return release

    @property
    def fullname(self) -> str:
        return (
            "tgbot-operator-telegram-bot-operator" if "telegram-bot-operator" not in self.name else self.name
        )

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = kube_json(
            self.cluster, "get", "pods", "-n", self.namespace, "-l", "app.kubernetes.io/component=operator"
        )["items"]
        return items

    def uninstall(self) -> None:
        with contextlib.suppress(AssertionError):
            helm(
                self.cluster,
                self.helm,
                "uninstall",
                self.name,
                "-n",
                self.namespace,
                "--wait",
                "--timeout",
                "2m",
            )
        self.cluster.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)


@dataclass
class BotRelease:
    cluster: PodTestCluster
    namespace: str
    name: str
    bot: Bot
    helm: str
    cluster_ip: str
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def install(
        cls,
        cluster: PodTestCluster,
        namespace: str,
        bot: Bot,
        *,
        helm: str = "helm",
        mode: str = "None",
        extra: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> BotRelease:
        name = "echo"
        cluster.kubectl(
            "create",
            "secret",
            "generic",
            f"{name}-token",
            "-n",
            namespace,
            f"--from-literal=token={bot.token}",
        )
        cluster_ip = free_cluster_ip(cluster)
        scheme = "https" if mode != "None" else "http"
        bot_image, sidecar_image = cluster.images["echo-bot"], cluster.images["tgbot-sidecar"]
        values: dict[str, Any] = {
            "bot": {
                "image": {"repository": bot_image.repository, "tag": bot_image.tag},
                "env": [{"name": "TELEGRAM_API_SERVER", "value": bot.emulator.url}],
            },
            "sidecar": {
                "image": {"repository": sidecar_image.repository, "tag": sidecar_image.tag},
                # The emulator delivers from the node's address (the route to Services says so).
                "allowNetworks": [f"{cluster.host_address}/32"],
            },
            "token": {"secretName": f"{name}-token"},
            "service": {"clusterIP": cluster_ip},
            "telegramBot": {
                "botApiServer": bot.emulator.url,
                "webhook": {"url": f"{scheme}://{cluster_ip}:8443/webhook", "certificate": {"mode": mode}},
            },
        }
        for key, value in (extra or {}).items():
            values.setdefault(key, {}).update(value)
        release = cls(cluster, namespace, name, bot, helm, cluster_ip, values)
        args = ["install", name, str(BOT_CHART), "-n", namespace]
        if wait:
            args += ["--wait", "--timeout", "5m"]
        with values_file(values) as path:
            try:
                globals()["helm"](cluster, helm, *args, "-f", str(path))
            except AssertionError as error:
                raise AssertionError(f"{error}\n{debug_dump(cluster, namespace)}") from None
        return release

    @property
    def fullname(self) -> str:
        return f"{self.name}-telegram-bot"

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = kube_json(
            self.cluster, "get", "pods", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.name}"
        )["items"]
        return items

    def uninstall(self) -> None:
        helm(
            self.cluster, self.helm, "uninstall", self.name, "-n", self.namespace, "--wait", "--timeout", "3m"
        )


def free_cluster_ip(cluster: PodTestCluster) -> str:
    """An address of the Service network that no Service has: beside the ``kubernetes`` Service's
    (10.0.0.1 on our cluster, 10.96.0.1 on kind, 10.43.0.1 on k3d), in .100-.250 of its /24."""
    services = kube_json(cluster, "get", "services", "-A")["items"]
    used = {s["spec"].get("clusterIP") for s in services}
    (api,) = [
        s
        for s in services
        if s["metadata"]["name"] == "kubernetes" and s["metadata"]["namespace"] == "default"
    ]
    prefix = api["spec"]["clusterIP"].rsplit(".", 1)[0]
    for _ in range(100):
        candidate = f"{prefix}.{random.randint(100, 250)}"
        if candidate not in used:
            return candidate
    raise AssertionError(f"no free ClusterIP in {prefix}.100-250")


def pod_ready_since(pod: dict[str, Any]) -> str | None:
    for condition in pod.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready" and condition["status"] == "True":
            return str(condition["lastTransitionTime"])
    return None
