"""The bot container's side of docs/bot-contract.md, rendered: the environment the chart gives it, the
path the sidecar forwards to, the example bot's defaults, and the volumes and env the user adds."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.charts.chartlib import BOT_CHART, BOT_MINIMAL_VALUES, REPO_ROOT, Helm, Obj, container, one
from tests.charts.test_bot_chart import merge, render
from tgbot_sidecar.cli import load_settings

CONTRACT_NAMES = {"BOT_TOKEN", "BOT_SOCKET", "BOT_WEBHOOK_PATH", "BOT_API_SERVER"}


def plain_env(c: Obj) -> dict[str, str]:
    """name -> value of the container's literal env entries (valueFrom ones left out)."""
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def echo_bot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("echo_bot_example", REPO_ROOT / "examples/echo-bot/bot.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deployment(helm: Helm, extra: dict[str, Any] | None = None) -> Obj:
    return one(render(helm, extra), "Deployment", "echo-telegram-bot")


def sidecar_upstream(d: Obj) -> tuple[str, str]:
    """(socket, path) the sidecar forwards to, as the sidecar itself parses its arguments."""
    settings = load_settings(container(d, "sidecar")["args"])
    return str(settings.upstream_unix_socket), urlsplit(settings.upstream).path


@pytest.mark.parametrize("path", [None, "/hook/v2"])
def test_bot_serves_where_the_sidecar_forwards(helm: Helm, path: str | None) -> None:
    d = deployment(helm, {"bot": {"webhookPath": path}} if path else None)
    env = plain_env(container(d, "bot"))
    socket, upstream_path = sidecar_upstream(d)
    assert env["BOT_SOCKET"] == socket == "/run/tgbot/bot.sock"
    assert env["BOT_WEBHOOK_PATH"] == upstream_path == (path or "/webhook")
    assert "BOT_API_SERVER" not in env, "unset: the bot talks to api.telegram.org"
    names = [e["name"] for e in container(d, "bot")["env"]]
    assert len(names) == len(set(names))
    assert set(names) == CONTRACT_NAMES - {"BOT_API_SERVER"}


def test_the_example_bot_defaults_to_what_the_chart_sets(helm: Helm) -> None:
    env = plain_env(container(deployment(helm), "bot"))
    bot = echo_bot()
    assert env["BOT_SOCKET"] == bot.DEFAULT_SOCKET
    assert env["BOT_WEBHOOK_PATH"] == bot.DEFAULT_WEBHOOK_PATH
    assert bot.api_server_from_env({"BOT_API_SERVER": "http://emulator:8081"}) == "http://emulator:8081"
    assert bot.api_server_from_env({}) is None
    # The example's former name is gone (issue 12): one name, the contract's.
    assert bot.api_server_from_env({"TELEGRAM_API_SERVER": "http://emulator:8081"}) is None


def test_bot_api_server_reaches_the_bot(helm: Helm) -> None:
    d = deployment(helm, {"telegramBot": {"botApiServer": "http://telegram-bot-api.bots:8081"}})
    assert plain_env(container(d, "bot"))["BOT_API_SERVER"] == "http://telegram-bot-api.bots:8081"


def test_your_own_bot_api_server_wins_without_a_duplicate(helm: Helm) -> None:
    d = deployment(
        helm,
        {
            "telegramBot": {"botApiServer": "http://telegram-bot-api.bots:8081"},
            "bot": {"env": [{"name": "BOT_API_SERVER", "value": "http://127.0.0.1:8081"}]},
        },
    )
    entries = [e for e in container(d, "bot")["env"] if e["name"] == "BOT_API_SERVER"]
    assert entries == [{"name": "BOT_API_SERVER", "value": "http://127.0.0.1:8081"}]


@pytest.mark.parametrize("name", ["BOT_SOCKET", "BOT_WEBHOOK_PATH", "BOT_TOKEN"])
@pytest.mark.parametrize("key", ["env", "extraEnv"])
def test_the_chart_owned_variables_cannot_be_overridden(any_helm: Helm, name: str, key: str) -> None:
    values = merge(BOT_MINIMAL_VALUES, {"bot": {key: [{"name": name, "value": "/elsewhere"}]}})
    result = any_helm.template(BOT_CHART, values, check=False)
    assert result.returncode != 0
    assert f"bot.env/bot.extraEnv must not set {name}" in result.stderr


@pytest.mark.parametrize("path", ["webhook", "/a b", "/a?b"])
def test_schema_rejects_a_bad_webhook_path(any_helm: Helm, path: str) -> None:
    values = merge(BOT_MINIMAL_VALUES, {"bot": {"webhookPath": path}})
    result = any_helm.template(BOT_CHART, values, check=False)
    assert result.returncode != 0
    assert "webhookPath" in result.stderr


EXTRAS: dict[str, Any] = {
    "bot": {
        "env": [{"name": "LOG_LEVEL", "value": "DEBUG"}],
        "extraEnv": [
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
        ],
        "envFrom": [{"configMapRef": {"name": "bot-config"}}],
        "extraVolumes": [
            {"name": "db-ca", "secret": {"secretName": "db-ca", "defaultMode": 0o440}},
            {"name": "data", "emptyDir": {"sizeLimit": "128Mi"}},
        ],
        "extraVolumeMounts": [
            {"name": "db-ca", "mountPath": "/etc/bot/db-ca", "readOnly": True},
            {"name": "data", "mountPath": "/var/lib/bot"},
        ],
    }
}


def check_extras(d: Obj) -> None:
    pod = d["spec"]["template"]["spec"]
    bot = container(d, "bot")
    names = [e["name"] for e in bot["env"]]
    # The contract's variables first, then env, then extraEnv.
    assert names == ["BOT_SOCKET", "BOT_WEBHOOK_PATH", "BOT_TOKEN", "LOG_LEVEL", "DB_PASSWORD"]
    assert bot["env"][-1]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "password"}}
    assert bot["envFrom"] == [{"configMapRef": {"name": "bot-config"}}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["db-ca"]["secret"]["secretName"] == "db-ca"
    assert volumes["data"]["emptyDir"]["sizeLimit"] == "128Mi"
    assert {"socket", "bot-tmp", "webhook-secret"} <= set(volumes), "the chart's own volumes stay"
    mounts = {m["name"]: m["mountPath"] for m in bot["volumeMounts"]}
    assert mounts == {
        "socket": "/run/tgbot",
        "bot-tmp": "/tmp",
        "db-ca": "/etc/bot/db-ca",
        "data": "/var/lib/bot",
    }
    sidecar_mounts = {m["name"] for m in container(d, "sidecar")["volumeMounts"]}
    assert not sidecar_mounts & {"db-ca", "data"}, "the bot's volumes are the bot's only"


def test_extra_env_volumes_and_mounts_reach_the_bot_container(helm: Helm) -> None:
    check_extras(deployment(helm, EXTRAS))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"extraVolumes": [{"name": "socket", "emptyDir": {}}]}, "extraVolumes"),
        ({"extraVolumes": [{"name": "Bad_Name", "emptyDir": {}}]}, "extraVolumes"),
        ({"extraVolumes": [{"name": "nosource"}]}, "extraVolumes"),
        ({"extraVolumeMounts": [{"name": "data"}]}, "mountPath"),
        ({"extraVolumeMounts": [{"name": "data", "mountPath": "/tmp"}]}, "extraVolumeMounts"),
        ({"extraVolumeMounts": [{"name": "data", "mountPath": "relative"}]}, "extraVolumeMounts"),
        ({"extraEnv": [{"value": "x"}]}, "extraEnv"),
    ],
)
def test_schema_rejects_bad_extras(any_helm: Helm, extra: dict[str, Any], message: str) -> None:
    result = any_helm.template(BOT_CHART, merge(BOT_MINIMAL_VALUES, {"bot": extra}), check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr
