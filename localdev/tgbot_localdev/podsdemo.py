"""``tgbot-demo --pods``: the demo's story on a pod cluster started on this machine.

Everything runs the way users run it: the images from our Dockerfiles (``hack/build-images.sh``),
a real node (containerd, kubelet, kube-proxy), the operator and the echo bot installed with our
Helm charts. Only the Bot API emulator is a process on this machine, on the node's bridge address,
where the pods reach it as they would reach api.telegram.org. Needs root, like the pod tests
(docs/test-cluster.md); it takes minutes where the host demo takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .controlplane import assets_are_built, find_assets
from .emulatorproc import Bot, Emulator
from .images import Image, build_images
from .kubectl import kubectl, shown
from .polling import wait_for
from .releases import BotRelease, OperatorRelease, Release
from .story import (
    BOT_NAME,
    BOT_TOKEN,
    BOT_USERNAME,
    HELLO,
    PROFILE,
    DemoError,
    condition,
    ok,
    say,
    show_commands,
)
from .story import step as _step

TOTAL = 8


def step(number: int, text: str) -> None:
    _step(number, TOTAL, text)


@dataclass
class DemoCluster:
    """What the releases need to know about the pod cluster (``releases.PodTarget``)."""

    env: dict[str, str]
    images: Mapping[str, Image]
    host_address: str
    helm_folder: Path

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return kubectl(self.env, *args, check=check, timeout=120)

    def show(self, *args: str) -> None:
        say(f"    $ kubectl {shown(args)}")
        for line in self.kubectl(*args).stdout.rstrip().splitlines():
            say(f"      {line}")


class Stopped(Exception):
    """SIGTERM or SIGHUP: unwind (and stop everything) like Ctrl-C does."""


def _stop_on_signals() -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


@contextlib.contextmanager
def _pod_cluster() -> Iterator[DemoCluster]:
    from .podcluster import PodCluster  # root-only machinery

    if os.geteuid() != 0:
        raise DemoError(
            "--pods needs root (containerd, network namespaces, iptables): see docs/test-cluster.md"
        )
    step(1, "Kubernetes parts and our images")
    if not assets_are_built():
        say("    building the control plane, kubelet, kube-proxy and helm from Go modules")
        say("    (the first time only: 25-45 minutes on 2 cores; later runs take seconds)")
    assets = find_assets(sys.stderr)
    say("    hack/build-images.sh: our Dockerfiles built with buildah, cached by their content")
    images = build_images(sys.stderr)
    for image in images.values():
        say(f"      {image.ref:60} {image.size / 1e6:6.0f} MB")
    step(2, "A pod cluster: control plane, kube-scheduler, one node (containerd, kubelet, kube-proxy)")
    say("    starting it and importing the images into the node's containerd (about 1-2 minutes)")
    # Its own folder under /var/tmp (containerd's snapshots need a real file system), removed after.
    cluster = PodCluster(assets=assets, images=images)
    try:
        cluster.start()
        target = DemoCluster(cluster.env(), images, cluster.node_ip, assets)
        target.show("get", "nodes", "-o", "wide")
        yield target
    finally:
        say("    stopping the pod cluster (pods, containerd, kubelet, network) ...")
        cluster.stop()


def _round_trip(bot: Bot, release: BotRelease) -> None:
    update_id = bot.send(HELLO)
    bot.wait_delivered([update_id], timeout=120)
    replies = wait_for("the webhook reply", lambda: bot.replies().get(update_id), timeout=30)
    say(f"    user  -> {HELLO!r}   (emulator -> Service {release.cluster_ip}:8443 -> sidecar -> echo bot)")
    say(f"    bot   -> {replies[0]!r}   (in the webhook reply)")
    if replies != [HELLO]:
        raise DemoError(f"unexpected replies {replies}")
    ok("the reply came back through the pod network")


def _bot_object(target: DemoCluster, release: BotRelease) -> dict[str, Any]:
    out = target.kubectl("get", "tgbot", release.fullname, "-n", release.namespace, "-o", "json").stdout
    bot: dict[str, Any] = json.loads(out)
    return bot


def _helm_test(release: Release) -> None:
    say(f"    $ helm test {release.name} -n {release.namespace}")
    for line in release.test().rstrip().splitlines():
        say(f"      {line}")
    ok(f"helm test {release.name}: its hook pod succeeded")


def run_on_pods(workdir: Path) -> None:
    _stop_on_signals()
    say(f"telegram-bot-operator demo on pods (logs in {workdir})")
    try:
        with _pod_cluster() as target:
            _story(target, workdir)
    except Stopped:
        say("\nStopped by a signal: everything started was stopped.")
        sys.exit(143)
    say("\nDemo finished: every step checked out. The pod cluster is gone, nothing left running.")
    say(f"Logs are in {workdir} (rm -rf it when done).")


def _story(target: DemoCluster, workdir: Path) -> None:
    step(3, "Bot API emulator on the node's address (the pods reach it like api.telegram.org)")
    with Emulator.start(target.host_address, workdir / "logs") as emulator:
        bot = emulator.add_bot(BOT_USERNAME, token=BOT_TOKEN)
        ok(f"emulator at {emulator.url} (bot @{BOT_USERNAME})")

        step(4, "helm install the operator chart (our tgbot-operator image)")
        operator = OperatorRelease.install(target, emulator)
        try:
            target.show("get", "pods", "-n", operator.namespace, "-o", "wide")
            ok("the operator pod is Ready, in-cluster with the chart's ServiceAccount")
            _bot_story(target, bot, operator)
        finally:
            operator.remove()


def _bot_story(target: DemoCluster, bot: Bot, operator: OperatorRelease) -> None:
    step(5, "helm install the bot chart: the echo bot + tgbot-sidecar, its TelegramBot with commands")
    namespace = f"tgbot-demo-{secrets.token_hex(3)}"
    target.kubectl("create", "namespace", namespace)
    try:
        release = BotRelease.install(
            target, namespace, bot, name=BOT_NAME, extra={"telegramBot": {"profile": PROFILE}}
        )
        target.show("get", "pods", "-n", namespace)
        target.show("get", "tgbot", "-n", namespace, "-o", "wide")
        webhook = bot.webhook()
        if webhook.get("url") != f"http://{release.cluster_ip}:8443/webhook":
            raise DemoError(f"unexpected webhook url {webhook.get('url')}")
        ok(f"the pod is Ready and the operator registered {webhook['url']} with a secret token")

        step(6, "A message travels through the Service and the sidecar to the bot and back")
        _round_trip(bot, release)

        step(7, "The declared commands (spec.profile from the chart's telegramBot.profile)")
        wait_for(
            "ProfileApplied=True",
            lambda: condition(_bot_object(target, release), "ProfileApplied").get("status") == "True",
            timeout=60,
        )
        show_commands(bot.api("getMyCommands"))
        _helm_test(release)

        step(8, "helm uninstall the bot: the operator calls deleteWebhook")
        release.uninstall()
        wait_for("deleteWebhook", lambda: bot.calls("deleteWebhook"), timeout=90)
        if bot.webhook().get("url"):
            raise DemoError("the webhook is still set after helm uninstall")
        ok("helm uninstall: the TelegramBot is gone and so is the webhook")
    finally:
        target.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
