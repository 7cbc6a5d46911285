"""examples/echo-bot/pod.yaml: accepted by a real API server, wired by the bot contract, and not
trusting more than its NetworkPolicy lets in."""

from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from tests.charts.chartlib import REPO_ROOT, Obj, container, one
from tests.support import Cluster
from tgbot_sidecar.cli import load_settings

POD_YAML = REPO_ROOT / "examples" / "echo-bot" / "pod.yaml"


def objects() -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(POD_YAML.read_text()) if doc]


def test_bot_and_sidecar_follow_the_contract() -> None:
    deployment = one(objects(), "Deployment", "echo-bot")
    bot, sidecar = container(deployment, "bot"), container(deployment, "sidecar")
    env = {e["name"]: e.get("value") for e in bot["env"]}
    settings = load_settings(sidecar["args"])
    assert env["BOT_SOCKET"] == str(settings.upstream_unix_socket) == "/run/tgbot/bot.sock"
    assert env["BOT_WEBHOOK_PATH"] == "/" + settings.upstream.split("/", 3)[3]
    bot_mounts = {m["name"]: m["mountPath"] for m in bot["volumeMounts"]}
    sidecar_mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    assert bot_mounts["bot-socket"] == sidecar_mounts["bot-socket"] == "/run/tgbot"
    # /var/run is /run on Debian images: the Secret must not land inside the shared socket volume.
    secret_dir = sidecar_mounts["webhook-secret"]
    assert not secret_dir.startswith(("/run/", "/var/run/")), secret_dir
    assert str(settings.secret_token_file).startswith(secret_dir + "/")
    assert "TELEGRAM_API_SERVER" not in POD_YAML.read_text()
    for c in (bot, sidecar):
        assert "/" not in c["image"].split(":")[0], "a plain local name, not a registry nobody has"


def test_no_broad_trusted_proxy_is_suggested() -> None:
    text = POD_YAML.read_text()
    suggested = re.findall(r"--trusted-proxy=([0-9a-fA-F.:/]+)", text)
    assert suggested, "the example shows where --trusted-proxy goes"
    for cidr in suggested:
        assert ipaddress.ip_network(cidr).prefixlen >= 24, f"{cidr} trusts a whole network"
    assert "docs/security.md" in text


def test_its_network_policy_admits_only_the_ingress_controller_on_the_webhook_port() -> None:
    objs = objects()
    deployment = one(objs, "Deployment", "echo-bot")
    policy = one(objs, "NetworkPolicy", "echo-bot")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    webhook = [r for r in policy["spec"]["ingress"] if {"port": "webhook", "protocol": "TCP"} in r["ports"]]
    assert len(webhook) == 1
    (peer,) = webhook[0]["from"]
    assert set(peer) == {"namespaceSelector", "podSelector"}, "one peer: both selectors must match"


@pytest.mark.cluster
def test_the_api_server_accepts_it(cluster: Cluster, namespace: str) -> None:
    result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(POD_YAML))
    assert "deployment.apps/echo-bot created (server dry run)" in result.stdout, result.stdout
    assert "networkpolicy.networking.k8s.io/echo-bot created (server dry run)" in result.stdout
