"""The whole system on one machine, no cluster and no Telegram account needed.

Steps: a local Kubernetes control plane (or an existing cluster, when asked), the
CRD, the Bot API emulator, the operator, a TelegramBot, then the example aiogram
echo bot behind the sidecar - and proof that it works: a message travels through
the sidecar to the dispatcher and the reply comes back, spoofed requests are
refused, and the secret token rotates while messages keep flowing.

Every step checks what it claims; the demo exits non-zero when one fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tgbot_emulator import EmulatorClient

from .controlplane import (
    REPO_ROOT,
    ControlPlane,
    ControlPlaneError,
    assets_are_built,
    find_assets,
    free_port,
)
from .processes import ProcessFailedError, ProcessGroup
from .secretmount import kubectl_secret_reader, mirror_secret

BOT_TOKEN = "123456789:AAdemo-Token_for_the_local_emulator0"  # noqa: S105 - the emulator's demo bot
BOT_ID = 123456789
BOT_NAME = "echo"
PYTHON = sys.executable
BIN = Path(sys.executable).parent


class DemoError(RuntimeError):
    """A step did not do what it claims."""


def say(text: str) -> None:
    print(text, flush=True)


def step(number: int, total: int, text: str) -> None:
    say(f"\n==> [{number}/{total}] {text}")


def ok(text: str) -> None:
    say(f"    ok: {text}")


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

    # --- kubectl -----------------------------------------------------------
    async def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        process = await asyncio.create_subprocess_exec(
            "kubectl",
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        out, err = await process.communicate(input.encode() if input is not None else None)
        if check and process.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)}: {err.decode().strip()}")
        return out.decode()

    async def show(self, *args: str) -> None:
        say(f"    $ kubectl {' '.join(args)}")
        for line in (await self.kubectl(*args)).rstrip().splitlines():
            say(f"      {line}")

    async def bot_object(self) -> dict[str, Any]:
        out = await self.kubectl("get", "tgbot", BOT_NAME, "-n", self.namespace, "-o", "json")
        bot: dict[str, Any] = json.loads(out)
        return bot


def _condition(bot: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in bot.get("status", {}).get("conditions", []):
        if condition.get("type") == kind:
            return dict(condition)
    return {}


async def _until(what: str, probe: Any, timeout: float = 60.0, period: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await probe()
        if result:
            return result
        await asyncio.sleep(period)
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")


# --- the steps -------------------------------------------------------------------
TOTAL = 9


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
            f"{BOT_TOKEN}={BOT_NAME}_demo_bot",
        ],
        ready_line=r"listening on http://",
    )
    line = next(x for x in emulator.log.read_text().splitlines() if "listening on http://" in x)
    demo.emulator_url = line.rsplit(" ", 1)[-1].strip()
    ok(f"Bot API emulator at {demo.emulator_url} (bot @{BOT_NAME}_demo_bot)")


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
        return _condition(await demo.bot_object(), "Ready").get("status") == "True"

    await _until("the TelegramBot to turn Ready", ready, timeout=90)
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
    await _until("the generated Secret", lambda: _exists(demo.secret_folder / "tls.crt"), timeout=30)
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


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


async def _http_ok(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def converse(demo: Demo, client: EmulatorClient, text: str, timeout: float = 30) -> dict[str, Any]:
    """Send ``text`` as a user and wait for the bot's reply."""
    update_id = await client.send_user_message(BOT_ID, text)

    async def reply() -> dict[str, Any] | None:
        for message in await client.sent_messages(BOT_ID):
            if message.get("reply_to_update_id") == update_id:
                return message
        return None

    found: dict[str, Any] = await _until(f"the reply to update {update_id}", reply, timeout=timeout)
    return found


async def message_round_trip(demo: Demo) -> None:
    async with EmulatorClient(demo.emulator_url) as client:
        reply = await converse(demo, client, "Hello from the demo!")
    say("    user  -> 'Hello from the demo!'   (emulator -> sidecar -> echo bot)")
    say(f"    bot   -> {reply.get('text')!r}   (in the webhook reply, via={reply.get('via')})")
    if reply.get("text") != "Hello from the demo!":
        raise DemoError(f"unexpected reply {reply}")
    ok("the reply came back through the sidecar")


async def spoofs(demo: Demo) -> None:
    url = f"https://127.0.0.1:{demo.sidecar_port}/webhook"
    token = (demo.secret_folder / "secret-token").read_text()
    update = json.dumps(
        {"update_id": 999_999_001, "message": {"message_id": 1, "date": 0, "chat": {"id": 1}}}
    )
    # (what, source address, secret token sent, extra headers, expected status)
    cases: list[tuple[str, str, str | None, dict[str, str], int]] = [
        ("wrong secret token from an allowed address", "127.0.0.1", "guess", {}, 401),
        ("no secret token", "127.0.0.1", None, {}, 401),
        ("right token, from an address outside the allowed networks", "127.0.0.3", token, {}, 403),
        (
            "X-Forwarded-For: 127.0.0.1 from an untrusted peer (ignored)",
            "127.0.0.3",
            token,
            {"X-Forwarded-For": "127.0.0.1"},
            403,
        ),
        (
            "via the trusted proxy for a client outside the allowed networks",
            "127.0.0.2",
            token,
            {"X-Forwarded-For": "127.0.0.1, 203.0.113.7"},
            403,
        ),
    ]
    for description, source, secret, extra, expected in cases:
        headers = {"Content-Type": "application/json", **extra}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=False)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(url, data=update, headers=headers) as response,
        ):
            status = response.status
        if status != expected:
            raise DemoError(f"{description}: expected {expected}, got {status}")
        ok(f"{description} -> {status}")
    async with EmulatorClient(demo.emulator_url) as client:
        sent_messages = await client.sent_messages(BOT_ID)
    if any(m.get("reply_to_update_id") == 999_999_001 for m in sent_messages):
        raise DemoError("a spoofed update reached the bot")
    ok("none of them reached the bot")


async def rotation(demo: Demo) -> None:
    before = (await demo.bot_object()).get("status", {}).get("secretTokenRotatedAt")
    old_token = (demo.secret_folder / "secret-token").read_text()
    await demo.kubectl(
        "annotate",
        "tgbot",
        BOT_NAME,
        "-n",
        demo.namespace,
        f"tgbot.dev/rotate-secret-token={int(time.time())}",
        "--overwrite",
    )
    say(f"    $ kubectl annotate tgbot echo -n {demo.namespace} tgbot.dev/rotate-secret-token=<now>")
    sent: list[int] = []
    async with EmulatorClient(demo.emulator_url) as client:

        async def rotated() -> bool:
            status = (await demo.bot_object()).get("status", {})
            return bool(status.get("secretTokenRotatedAt")) and status.get("secretTokenRotatedAt") != before

        deadline = time.monotonic() + 90
        while not await rotated():
            if time.monotonic() > deadline:
                raise DemoError("the rotation did not finish within 90 s")
            sent.append(await client.send_user_message(BOT_ID, f"during rotation #{len(sent) + 1}"))
            await asyncio.sleep(0.3)
        await _until(
            "the previous token to be retired",
            lambda: _absent(demo.secret_folder / "previous-secret-token"),
            timeout=30,
        )
        for _ in range(3):
            sent.append(await client.send_user_message(BOT_ID, f"after rotation #{len(sent) + 1}"))
        await client.wait_delivered(BOT_ID, sent, timeout=60)
        replies = {m.get("reply_to_update_id") for m in await client.sent_messages(BOT_ID)}
        deliveries = await client.deliveries(BOT_ID)
    new_token = (demo.secret_folder / "secret-token").read_text()
    if new_token == old_token:
        raise DemoError("the secret token did not change")
    missing = [u for u in sent if u not in replies]
    if missing:
        raise DemoError(f"no reply to updates {missing}")
    rejected = [d for d in deliveries if d.get("status") == 401]
    if rejected:
        raise DemoError(f"{len(rejected)} deliveries were refused with 401 during the rotation")
    ok(f"secret token rotated; {len(sent)} messages sent during and after it, all answered, no 401")


async def _absent(path: Path) -> bool:
    return not await asyncio.to_thread(path.exists)


async def read_line(prompt: str) -> str | None:
    """``input()`` in a daemon thread: Ctrl-C or a signal must not wait for the user's Enter."""
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str | None] = loop.create_future()

    def settle(value: str | None) -> None:
        if not line.done():
            line.set_result(value)

    def read() -> None:
        try:
            value: str | None = input(prompt)
        except EOFError:
            value = None
        with contextlib.suppress(RuntimeError):  # the loop may be gone already
            loop.call_soon_threadsafe(settle, value)

    threading.Thread(target=read, daemon=True).start()
    return await line


async def interactive(demo: Demo) -> None:
    say("\n    Type a message for the bot (empty line or Ctrl-D to finish).")
    async with EmulatorClient(demo.emulator_url) as client:
        while True:
            text = await read_line("    you> ")
            if text is None or not text.strip():
                break
            try:
                reply = await converse(demo, client, text)
            except DemoError:
                # E.g. /file: the bot answers with sendDocument, which the emulator does not carry out.
                say("    bot> (no reply within 30 s)")
                continue
            say(f"    bot> {reply.get('text')}")


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


async def run(args: argparse.Namespace) -> None:
    # A closed terminal (SIGHUP) or a `kill` (SIGTERM) must stop everything like Ctrl-C does.
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, main_task.cancel)
    kubeconfig = args.kubeconfig or (
        os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        if os.environ.get("USE_EXISTING_CLUSTER", "").lower() in {"1", "true", "yes"}
        else None
    )
    workdir = Path(args.workdir) if args.workdir else REPO_ROOT / ".tmp" / f"demo-{int(time.time())}"
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"telegram-bot-operator demo (logs in {workdir})")
    group = ProcessGroup(workdir / "logs")
    step(1, TOTAL, "Kubernetes control plane")
    async with control_plane(workdir, kubeconfig) as env:
        demo = Demo(workdir=workdir, env=env, namespace=f"tgbot-demo-{secrets.token_hex(3)}", group=group)
        try:
            step(2, TOTAL, "TelegramBot CRD")
            await install_crd(demo)
            step(3, TOTAL, "Bot API emulator (stands in for api.telegram.org)")
            await start_emulator(demo)
            step(4, TOTAL, "Operator")
            await start_operator(demo)
            step(5, TOTAL, "Token Secret + TelegramBot -> Ready")
            await apply_bot(demo)
            step(6, TOTAL, "Echo bot (aiogram) behind the sidecar")
            await start_bot_and_sidecar(demo)
            step(7, TOTAL, "A message travels through the sidecar and the reply comes back")
            await message_round_trip(demo)
            step(8, TOTAL, "Spoofed requests are refused")
            await spoofs(demo)
            step(9, TOTAL, "Secret-token rotation while messages keep flowing")
            await rotation(demo)
            if args.interactive:
                await interactive(demo)
            say("\n==> Clean-up")
            await delete_bot(demo)
        finally:
            for task in demo.tasks:
                task.cancel()
            await asyncio.gather(*demo.tasks, return_exceptions=True)
            if kubeconfig:
                await asyncio.shield(leave_no_trace(demo))
            await asyncio.shield(group.stop_all())
    say("\nDemo finished: every step checked out. All processes stopped.")
    say(f"Logs and the mounted Secret's history are in {workdir} (rm -rf it when done).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tgbot-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactive", "-i", action="store_true", help="type messages and see the replies")
    parser.add_argument("--workdir", help="folder for logs and state (default: .tmp/demo-<time>)")
    parser.add_argument(
        "--kubeconfig",
        help="use this existing cluster instead of a local control plane (also: USE_EXISTING_CLUSTER=true "
        "with KUBECONFIG); the demo works in a namespace of its own and removes it afterwards",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args))
    except (DemoError, ControlPlaneError, ProcessFailedError) as error:
        say(f"\nDEMO FAILED: {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        say("\nInterrupted: everything started was stopped.")
        sys.exit(130)
    except asyncio.CancelledError:
        say("\nStopped by a signal: everything started was stopped.")
        sys.exit(143)


if __name__ == "__main__":
    main()
