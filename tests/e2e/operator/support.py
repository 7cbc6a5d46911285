"""Helpers for the operator's end-to-end tests: a real control plane, the emulator, the operator."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support import Cluster, Emulator

OPERATOR_BIN = Path(sys.executable).with_name("tgbot-operator")

T = TypeVar("T")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_token(bot_id: int) -> str:
    return f"{bot_id}:{secrets.token_urlsafe(27)}"


@dataclass
class OperatorProcess:
    """``tgbot-operator`` as a subprocess, its log in a file (to scan for secrets)."""

    cluster: Cluster
    namespace: str
    log_path: Path
    args: list[str]
    kubeconfig: Path
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        assert self.process is None
        self.starts += 1
        command = [
            str(OPERATOR_BIN),
            "--namespace",
            self.namespace,
            "--kubeconfig",
            str(self.kubeconfig),
            "--metrics-listen",
            f"127.0.0.1:{self.metrics_port}",
            "--log-level",
            "debug",
            *self.args,
        ]
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(command)}\n".encode())
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.cluster.env
            )

    def stop(self, timeout: float = 20.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` matching ``labels`` (0 when none)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total


async def kubectl(
    cluster: Cluster, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """kubectl off the event loop (the in-process emulator must keep serving meanwhile)."""
    return await asyncio.to_thread(cluster.kubectl, *args, input=input, check=check)


async def apply(cluster: Cluster, namespace: str, *docs: dict[str, Any]) -> None:
    text = yaml.safe_dump_all(list(docs))
    await kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=text)


def bot_manifest(name: str, emulator_url: str, token_secret: str, **spec: Any) -> dict[str, Any]:
    webhook = {"url": f"http://127.0.0.1:{free_port()}/webhook", **spec.pop("webhook", {})}
    body: dict[str, Any] = {
        "tokenSecretRef": {"name": token_secret},
        "botApiServer": emulator_url,
        "webhook": webhook,
        **spec,
    }
    return {
        "apiVersion": "tgbot.dev/v1alpha1",
        "kind": "TelegramBot",
        "metadata": {"name": name},
        "spec": body,
    }


def token_secret(name: str, token: str, key: str = "token") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {key: token}}


async def get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = await kubectl(cluster, "get", "-n", namespace, kind, name, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    return dict(json.loads(result.stdout))


async def secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, bytes]:
    obj = await get(cluster, namespace, "secret", name)
    assert obj is not None, f"Secret {name} not found"
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def condition(bot: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((bot or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    *,
    timeout: float = 60.0,
    interval: float = 0.3,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; last value:\n{_show(value)}"
            )
        await asyncio.sleep(interval)


def _show(value: Any) -> str:
    try:
        return json.dumps(value, indent=1, default=str)[-4000:]
    except TypeError:
        return repr(value)[-4000:]


async def wait_condition(
    cluster: Cluster,
    namespace: str,
    name: str,
    type_: str = "Ready",
    status: str = "True",
    reason: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    def ok(bot: dict[str, Any] | None) -> bool:
        c = condition(bot, type_)
        return c.get("status") == status and (reason is None or c.get("reason") == reason)

    bot = await eventually(
        lambda: get(cluster, namespace, "tgbot", name),
        ok,
        timeout=timeout,
        what=f"{name} {type_}={status} {reason or ''}",
    )
    assert bot is not None
    return bot


@dataclass
class ReadyBot:
    """A TelegramBot of a test, as ``Bots.ready_bot`` left it: its token known to the emulator."""

    name: str
    bot_id: int
    token: str = field(repr=False)  # never in a repr, a failing test's output included
    #: What was applied (change it and apply it again to change the bot).
    manifest: dict[str, Any]
    #: The TelegramBot when the awaited condition held.
    body: dict[str, Any]


@dataclass
class Bots:
    """The setup every end-to-end test repeats: a bot known to the emulator, its token Secret and
    TelegramBot applied in the test's namespace, the wait for the operator to make it Ready."""

    cluster: Cluster
    namespace: str
    emulator: Emulator

    async def new_token(self, bot_id: int, username: str) -> str:
        """A token the emulator knows as ``@username`` (bot ``bot_id``)."""
        token = new_token(bot_id)
        await self.emulator.client.add_bot(token, username)
        return token

    async def ready_bot(
        self,
        name: str,
        bot_id: int,
        *,
        token: str | None = None,
        username: str | None = None,
        until: str = "Ready",
        reason: str | None = None,
        timeout: float = 60.0,
        **spec: Any,
    ) -> ReadyBot:
        """Apply the Secret ``<name>-token`` and the TelegramBot ``name`` (``spec`` as in
        ``bot_manifest``) and wait until its condition ``until`` is True (with ``reason``, if given).
        ``token``: one the test already registered with the emulator, else a new one for
        ``@<name>_bot`` (or ``@username``)."""
        if token is None:
            token = await self.new_token(bot_id, username or f"{name}_bot")
        manifest = bot_manifest(name, self.emulator.url, f"{name}-token", **spec)
        await apply(self.cluster, self.namespace, token_secret(f"{name}-token", token), manifest)
        body = await wait_condition(
            self.cluster, self.namespace, name, until, "True", reason=reason, timeout=timeout
        )
        return ReadyBot(name=name, bot_id=bot_id, token=token, manifest=manifest, body=body)


async def events(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    result = await kubectl(cluster, "get", "events", "-n", namespace, "-o", "json")
    return list(json.loads(result.stdout)["items"])


async def assert_no_secrets_leaked(
    cluster: Cluster, namespace: str, operator: OperatorProcess, *secrets_: str
) -> None:
    """No token (nor its secret half) in the operator log, the Events or any TelegramBot."""
    needles = set()
    for secret in secrets_:
        if secret:
            needles.add(secret)
            _, sep, tail = secret.partition(":")
            if sep:
                needles.add(tail)
    bots = await kubectl(cluster, "get", "tgbot", "-n", namespace, "-o", "json")
    haystacks = {
        "operator log": operator.log(),
        "events": json.dumps(await events(cluster, namespace)),
        "TelegramBots": bots.stdout,
    }
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"a secret ({needle[:4]}...) appears in the {where}"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}
