"""The system under test for the operator and reliability runs: a control plane (ours, or the
cluster of a given environment), the CRD, the Bot API emulator, the operator - each a process
with its log in a file, so the token scan can read them all afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tgbot_localdev import polling
from tgbot_localdev.controlplane import ControlPlane, find_assets, free_port
from tgbot_localdev.kubectl import kubectl_async
from tgbot_localdev.processes import ManagedProcess, ProcessGroup
from tgbot_operator import names
from tgbot_operator.kube_http import MERGE_PATCH, Transport
from tgbot_operator.login import connection_info

from .processes import BIN, REPO

CRD = REPO / "crds" / "telegrambots.tgbot.dev.yaml"
T = TypeVar("T")

#: Operator settings for runs that should not wait minutes (rotation graces of seconds).
FAST_OPERATOR = [
    "--check-interval",
    "5s",
    "--token-check-interval",
    "2s",
    "--rotation-propagation-grace",
    "3s",
    "--rotation-retire-grace",
    "3s",
    "--deletion-timeout",
    "60s",
]


def new_token(bot_id: int) -> str:
    return f"{bot_id}:{secrets.token_urlsafe(27)}"


@contextlib.asynccontextmanager
async def kube_env(env: dict[str, str] | None, workdir: Path) -> AsyncIterator[dict[str, str]]:
    """``env`` when given (a test's cluster), else a fresh local control plane."""
    if env is not None:
        yield env
        return
    plane = ControlPlane(
        assets=await asyncio.to_thread(find_assets, sys.stderr), workdir=workdir / "controlplane"
    )
    await asyncio.to_thread(plane.start)
    try:
        yield plane.env()
    finally:
        await asyncio.to_thread(plane.stop)


@dataclass
class Stack:
    env: dict[str, str]
    workdir: Path
    namespace: str
    group: ProcessGroup
    emulator_url: str = ""
    operator: ManagedProcess | None = None
    operator_starts: int = 0
    operator_args: list[str] = field(default_factory=list)

    async def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> str:
        """localdev's kubectl (errors show kubectl's message, never the input), bounded in time."""
        return await asyncio.wait_for(kubectl_async(self.env, *args, input=input, check=check), timeout)

    async def apply(self, *docs: dict[str, Any], verb: str = "apply") -> None:
        text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(docs)})
        await self.kubectl(verb, "-n", self.namespace, "-f", "-", input=text)

    async def setup(self) -> None:
        await self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
        # Not `kubectl wait`: on a CRD created a moment ago it fails at once ("<nil> is of the type
        # <nil>") while the API server has not written the CRD's conditions yet.
        established = '{.status.conditions[?(@.type=="Established")].status}'
        crd = ("get", "crd", "telegrambots.tgbot.dev", "-o", f"jsonpath={established}")
        await until("the CRD established", lambda: self.kubectl(*crd), lambda out: out == "True", 60)
        await self.kubectl("create", "namespace", self.namespace)

    async def start_emulator(self, *extra: str) -> None:
        port = free_port()
        argv = [
            str(BIN / "tgbot-emulator"),
            "--listen",
            f"127.0.0.1:{port}",
            "--allow-local-webhooks",
            *extra,
        ]
        await self.group.start("emulator", argv, ready_line=r"listening on http://")
        self.emulator_url = f"http://127.0.0.1:{port}"

    async def start_operator(self, *args: str) -> ManagedProcess:
        if args:
            self.operator_args = list(args)
        self.operator_starts += 1
        # The emulator is no default Bot API server: the operator is told to allow it, as a
        # production install would name its self-hosted server.
        allow = ["--allow-bot-api-server", self.emulator_url] if self.emulator_url else []
        argv = [str(BIN / "tgbot-operator"), "--namespace", self.namespace, *allow, *self.operator_args]
        self.operator = await self.group.start(
            f"operator-{self.operator_starts}",
            argv,
            env=self.env,
            ready_line=r"Initial authentication has finished",
        )
        return self.operator

    async def kill_operator(self) -> None:
        if self.operator is not None and self.operator.running:
            self.operator.process.kill()
            await self.operator.process.wait()

    async def stop_operator(self) -> None:
        if self.operator is not None:
            await self.operator.stop(timeout=30)

    async def bots(self) -> list[dict[str, Any]]:
        out = await self.kubectl("get", "tgbot", "-n", self.namespace, "-o", "json")
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    async def remove(self, *, wait: bool = False) -> None:
        """Our finalizer must not keep the namespace when no operator runs any more: drop it from
        every TelegramBot left, many PATCHes at once (one kubectl per bot took 5 minutes at 3,000),
        then delete the namespace; ``wait`` until it is gone (the next measurement must not share
        the API server with the deletion of thousands of objects)."""
        with contextlib.suppress(Exception):
            items = await self.bots()
            transport = Transport(functools.partial(connection_info, Path(self.env["KUBECONFIG"])))
            limit = asyncio.Semaphore(16)
            path = f"/apis/{names.GROUP}/{names.VERSION}/namespaces/{self.namespace}/{names.PLURAL}"

            async def release(name: str) -> None:
                async with limit:
                    body = {"metadata": {"finalizers": None}}
                    what = f"release {name}"
                    await transport.request(
                        "PATCH",
                        f"{path}/{name}",
                        what=what,
                        body=body,
                        content_type=MERGE_PATCH,
                        missing_ok=True,
                    )

            try:
                await asyncio.gather(*(release(item["metadata"]["name"]) for item in items))
            finally:
                await transport.close()
        deletion = ("--wait=true", "--timeout=900s") if wait else ("--wait=false",)
        await self.kubectl("delete", "namespace", self.namespace, *deletion, check=False)

    async def bot(self, name: str) -> dict[str, Any]:
        out = await self.kubectl("get", "tgbot", name, "-n", self.namespace, "-o", "json")
        obj: dict[str, Any] = json.loads(out)
        return obj

    async def events_json(self) -> str:
        return await self.kubectl("get", "events", "-n", self.namespace, "-o", "json")

    def logs(self) -> dict[str, str]:
        """Every log file of this run."""
        return {p.name: p.read_text(errors="replace") for p in sorted(self.group.logdir.glob("*.log"))}


def condition(bot: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for c in (bot.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def is_ready(bot: dict[str, Any]) -> bool:
    return condition(bot).get("status") == "True"


def bot_manifest(name: str, emulator_url: str, secret: str, url: str, **webhook: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tgbot.dev/v1alpha1",
        "kind": "TelegramBot",
        "metadata": {"name": name},
        "spec": {
            "tokenSecretRef": {"name": secret},
            "botApiServer": emulator_url,
            "webhook": {"url": url, **webhook},
        },
    }


def token_secret(name: str, token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"token": token}}


async def until(
    what: str,
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    timeout: float,
    period: float = 0.5,
) -> T:
    """The probe's first value that passes ``check`` (localdev's polling, which wants truthy)."""

    async def checked() -> tuple[T] | None:
        value = await probe()
        return (value,) if check(value) else None

    found: tuple[T] = await polling.until(what, checked, timeout, period)
    return found[0]


@contextlib.asynccontextmanager
async def stack(
    env: dict[str, str] | None, workdir: Path, namespace: str | None = None
) -> AsyncIterator[Stack]:
    async with kube_env(env, workdir) as kenv:
        group = ProcessGroup(workdir / "logs")
        s = Stack(kenv, workdir, namespace or f"bench-{secrets.token_hex(3)}", group)
        try:
            await s.setup()
            yield s
        finally:
            await group.stop_all()
            await s.remove()


def with_operator_source(env: dict[str, str], source: Path | None) -> dict[str, str]:
    """``env`` in which the tgbot_operator package in ``source`` (a commit to compare with, e.g.
    ``git archive <commit> operator/tgbot_operator | tar -x -C DIR``) wins over the installed one."""
    if source is None:
        return env
    return {**env, "PYTHONPATH": f"{source}:{env.get('PYTHONPATH', '')}".rstrip(":")}


def env_from_os() -> dict[str, str] | None:
    """Use the cluster of ``KUBECONFIG`` when USE_EXISTING_CLUSTER=true, else start our own."""
    if os.environ.get("USE_EXISTING_CLUSTER", "").lower() in {"1", "true", "yes"}:
        return dict(os.environ)
    return None
