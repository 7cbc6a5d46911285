"""The host demo's set-up steps: control plane, CRD, emulator, operator, the TelegramBot and its
declared commands, the echo bot behind the sidecar as local processes; and the clean-up.

Each step checks what it claims (``story.DemoError`` otherwise); the checks that the whole works
(a round trip, spoofs, a rotation) are in ``demo_checks``. A little over ~300 lines: the steps in the
order the demo runs them, each short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tgbot_emulator import EmulatorClient

from .controlplane import REPO_ROOT, ControlPlane, assets_are_built, find_assets, free_port
from .kubectl import KubectlError, kubectl_async, shown
from .polling import until
from .processes import ProcessGroup
from .secretmount import kubectl_secret_reader, mirror_secret
from .story import (
    BOT_ID,
    BOT_NAME,
    BOT_TOKEN,
    BOT_USERNAME,
    PROFILE,
    DemoError,
    condition,
    ok,
    say,
    show_commands,
)

PYTHON = sys.executable
BIN = Path(sys.executable).parent


@dataclass
class Demo:
    workdir: Path
    env: dict[str, str]
    namespace: str
    group: ProcessGroup
    emulator_url: str = ""
    sidecar_port: int = 0
    secret_folder: Path = field(default_factory=Path)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        try:
            return await kubectl_async(self.env, *args, input=input, check=check)
        except KubectlError as error:
            raise DemoError(str(error)) from None

    async def show(self, *args: str) -> None:
        say(f"    $ kubectl {shown(args)}")
        for line in (await self.kubectl(*args)).rstrip().splitlines():
            say(f"      {line}")

    async def bot_object(self) -> dict[str, Any]:
        out = await self.kubectl("get", "tgbot", BOT_NAME, "-n", self.namespace, "-o", "json")
        bot: dict[str, Any] = json.loads(out)
        return bot


@contextlib.asynccontextmanager
async def control_plane(workdir: Path, kubeconfig: str | None) -> AsyncIterator[dict[str, str]]:
    if kubeconfig:
        say(f"    using the existing cluster of {kubeconfig}")
        env = dict(os.environ, KUBECONFIG=kubeconfig)
        if not _on_path("kubectl", env):
            env["PATH"] = f"{await asyncio.to_thread(find_assets, sys.stderr)}{os.pathsep}{env['PATH']}"
        probe = await asyncio.create_subprocess_exec(
            "kubectl",
            "get",
            "--raw",
            "/readyz",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await probe.communicate()
        if probe.returncode != 0:
            raise DemoError(f"cannot reach the cluster of {kubeconfig}: {err.decode().strip()[:300]}")
        yield env
        return
    if not await asyncio.to_thread(assets_are_built):
        say("    building etcd, kube-apiserver, kube-controller-manager, kubectl and helm from Go modules")
        say("    (the first time only: 15-35 minutes on 2 cores; progress below; later runs take seconds)")
    assets = await asyncio.to_thread(find_assets, sys.stderr)
    plane = ControlPlane(assets=assets, workdir=workdir / "controlplane")
    say("    starting etcd, kube-apiserver and kube-controller-manager on loopback (about 10-30 s)")
    await asyncio.to_thread(plane.start)
    try:
        ok(f"API server at {plane.server}")
        yield plane.env()
    finally:
        await asyncio.to_thread(plane.stop)
    # Its etcd data and certificates are of no use afterwards; the logs above them are kept.
    await asyncio.to_thread(shutil.rmtree, workdir / "controlplane", True)


def _on_path(command: str, env: dict[str, str]) -> bool:
    return any(
        (Path(folder) / command).exists() for folder in env.get("PATH", "").split(os.pathsep) if folder
    )


async def install_crd(demo: Demo) -> None:
    await demo.kubectl("apply", "-f", str(REPO_ROOT / "crds"))
    await demo.kubectl("wait", "--for=condition=Established", "crd/telegrambots.tgbot.dev", "--timeout=60s")
    ok("CRD telegrambots.tgbot.dev established")
    await demo.kubectl("create", "namespace", demo.namespace)
    ok(f"namespace {demo.namespace}")


async def start_emulator(demo: Demo) -> None:
    emulator = await demo.group.start(
        "emulator",
        [
            str(BIN / "tgbot-emulator"),
            "--listen",
            "127.0.0.1:0",
            "--allow-local-webhooks",
            "--retry-cap",
            "4",
            "--bot",
            f"{BOT_TOKEN}={BOT_USERNAME}",
        ],
        ready_line=r"listening on http://",
    )
    line = next(x for x in emulator.log.read_text().splitlines() if "listening on http://" in x)
    demo.emulator_url = line.rsplit(" ", 1)[-1].strip()
    ok(f"Bot API emulator at {demo.emulator_url} (bot @{BOT_USERNAME})")


async def start_operator(demo: Demo) -> None:
    await demo.group.start(
        "operator",
        [
            str(BIN / "tgbot-operator"),
            "--namespace",
            demo.namespace,
            # The emulator is a Bot API server like a self-hosted one: allowed by name, as it must be.
            "--allow-bot-api-server",
            demo.emulator_url,
            "--check-interval",
            "10s",
            "--token-check-interval",
            "5s",
            "--rotation-propagation-grace",
            "3s",
            "--rotation-retire-grace",
            "3s",
        ],
        env=demo.env,
        ready_line=r"(?i)(starting|started|watching|resumed|handler)",
        timeout=60,
    )
    ok(f"tgbot-operator running (log: {demo.group.logdir / 'operator.log'})")


async def apply_bot(demo: Demo) -> None:
    await demo.kubectl(
        "create", "secret", "generic", "echo-token", "-n", demo.namespace, f"--from-literal=token={BOT_TOKEN}"
    )
    ok("token Secret echo-token created")
    demo.sidecar_port = free_port()
    manifest = (REPO_ROOT / "examples" / "demo" / "telegrambot.yaml").read_text()
    manifest = manifest.replace("${EMULATOR_URL}", demo.emulator_url).replace(
        "${SIDECAR_PORT}", str(demo.sidecar_port)
    )
    say(
        f"    $ kubectl apply -f examples/demo/telegrambot.yaml   (url https://127.0.0.1:{demo.sidecar_port}/webhook)"
    )
    await demo.kubectl("apply", "-n", demo.namespace, "-f", "-", input=manifest)

    async def ready() -> bool:
        return condition(await demo.bot_object(), "Ready").get("status") == "True"

    await until("the TelegramBot to turn Ready", ready, timeout=90)
    await demo.show("get", "tgbot", "-n", demo.namespace, "-o", "wide")
    async with EmulatorClient(demo.emulator_url) as client:
        webhook = await client.webhook(BOT_ID)
        calls = await client.calls(BOT_ID, method="setWebhook")
    say("    the emulator's webhook now (getWebhookInfo, secret redacted):")
    for key in ("url", "has_custom_certificate", "max_connections", "allowed_updates", "secret_token"):
        say(f"      {key}: {webhook.get(key)}")
    if webhook.get("url") != f"https://127.0.0.1:{demo.sidecar_port}/webhook":
        raise DemoError(f"unexpected webhook url {webhook.get('url')}")
    ok(f"registered with {len(calls)} setWebhook call(s), a secret token and the self-signed certificate")


async def start_bot_and_sidecar(demo: Demo) -> None:
    demo.secret_folder = demo.workdir / "webhook-secret"
    reader = kubectl_secret_reader(f"{BOT_NAME}-webhook", demo.namespace, demo.env)
    demo.tasks.append(asyncio.create_task(mirror_secret(reader, demo.secret_folder)))
    await until("the generated Secret", lambda: _exists(demo.secret_folder / "tls.crt"), timeout=30)
    ok(f"Secret {BOT_NAME}-webhook mounted at {demo.secret_folder} (kubelet-style, synced every 0.5 s)")
    socket_path = demo.workdir / "bot.sock"
    await demo.group.start(
        "echo-bot",
        [PYTHON, str(REPO_ROOT / "examples" / "echo-bot" / "bot.py")],
        env={
            **os.environ,
            "BOT_TOKEN": BOT_TOKEN,
            "BOT_SOCKET": str(socket_path),
            "BOT_API_SERVER": demo.emulator_url,
        },
        ready=lambda _: _exists(socket_path),
        # aiogram imports some 700 modules: seconds here, over a minute on a loaded machine.
        timeout=180,
    )
    ok(f"aiogram echo bot serving on {socket_path}")
    admin_port = free_port()
    await demo.group.start(
        "sidecar",
        [
            str(BIN / "tgbot-sidecar"),
            "--listen",
            f"127.0.0.1:{demo.sidecar_port}",
            "--path",
            "/webhook",
            "--secret-token-file",
            str(demo.secret_folder / "secret-token"),
            "--previous-secret-token-file",
            str(demo.secret_folder / "previous-secret-token"),
            "--tls-cert",
            str(demo.secret_folder / "tls.crt"),
            "--tls-key",
            str(demo.secret_folder / "tls.key"),
            "--upstream",
            "http://bot/webhook",
            "--upstream-unix-socket",
            str(socket_path),
            # The emulator delivers from loopback; 127.0.0.2 plays an ingress proxy.
            "--allow-network",
            "127.0.0.1/32",
            "--trusted-proxy",
            "127.0.0.2/32",
            "--admin-listen",
            f"127.0.0.1:{admin_port}",
            "--reload-interval",
            "0.5",
        ],
        ready=lambda _: _http_ok(f"http://127.0.0.1:{admin_port}/readyz"),
    )
    ok(f"tgbot-sidecar on https://127.0.0.1:{demo.sidecar_port}/webhook (admin :{admin_port})")


async def _my_commands(demo: Demo) -> list[dict[str, Any]]:
    """getMyCommands as the bot itself calls it."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{demo.emulator_url}/bot{BOT_TOKEN}/getMyCommands", json={}) as response,
    ):
        answer = await response.json()
    return list(answer.get("result") or [])


async def declare_commands(demo: Demo) -> None:
    """spec.profile added to the running TelegramBot: the operator applies it within seconds."""
    if await _my_commands(demo):
        raise DemoError("the bot has commands before any were declared")
    say("    getMyCommands before: none (BotFather's default)")
    patch = json.dumps({"spec": {"profile": PROFILE}}, separators=(",", ":"))
    say(f"    $ kubectl patch tgbot {BOT_NAME} -n {demo.namespace} --type=merge -p '{patch}'")
    await demo.kubectl("patch", "tgbot", BOT_NAME, "-n", demo.namespace, "--type=merge", "-p", patch)

    async def applied() -> bool:
        return condition(await demo.bot_object(), "ProfileApplied").get("status") == "True"

    await until("the operator to apply spec.profile (ProfileApplied=True)", applied, timeout=60)
    ok("ProfileApplied=True: the operator called setMyCommands")
    show_commands(await _my_commands(demo))


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


async def _http_ok(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def delete_bot(demo: Demo) -> None:
    await demo.kubectl("delete", "tgbot", BOT_NAME, "-n", demo.namespace, "--timeout=60s")
    async with EmulatorClient(demo.emulator_url) as client:
        webhook = await client.webhook(BOT_ID)
    if webhook.get("url"):
        raise DemoError(f"the webhook is still set after deletion: {webhook.get('url')}")
    ok("TelegramBot deleted: the operator called deleteWebhook (deletionPolicy: DeleteWebhook)")


async def leave_no_trace(demo: Demo) -> None:
    """On an existing cluster: remove what the demo made, even after a failure.

    Runs while the operator still does, so that its finalizer is honoured; when it is gone the
    finalizer is dropped by hand, or the namespace would hang in Terminating.
    """
    await demo.kubectl(
        "delete", "tgbot", "--all", "-n", demo.namespace, "--timeout=30s", "--ignore-not-found", check=False
    )
    left = await demo.kubectl("get", "tgbot", "-n", demo.namespace, "-o", "name", check=False)
    for name in left.split():
        patch = '{"metadata":{"finalizers":null}}'
        await demo.kubectl("patch", name, "-n", demo.namespace, "--type=merge", "-p", patch, check=False)
    await demo.kubectl(
        "delete", "namespace", demo.namespace, "--wait=false", "--ignore-not-found", check=False
    )
