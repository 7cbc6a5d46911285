"""The sidecar's connection bounds and dedup window as chart values, read back by the sidecar's own
argument parser from the rendered Deployment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.charts.chartlib import BOT_CHART, BOT_MINIMAL_VALUES, Helm, Obj, container, one
from tests.charts.test_bot_chart import merge, render
from tgbot_sidecar.cli import load_settings
from tgbot_sidecar.settings import Settings

#: chart value -> (value set, Settings field, value the sidecar must end up with)
TUNED: dict[str, tuple[Any, str, Any]] = {
    "maxConnections": (200, "max_connections", 200),
    "maxHeadBytes": (8192, "max_head_bytes", 8192),
    "headTimeout": (2.5, "head_timeout", 2.5),
    "bodyTimeout": ("7.5", "body_timeout", 7.5),  # a string, as `--set sidecar.bodyTimeout=7.5` gives
    "idleTimeout": (45, "idle_timeout", 45.0),
    "sendTimeout": (12, "send_timeout", 12.0),
    "dedupWindow": (0, "dedup_window", 0.0),
    "readyRequiresUpstream": (False, "ready_requires_upstream", False),
}


def sidecar_settings(helm: Helm, sidecar: dict[str, Any] | None = None) -> Settings:
    deployment = one(render(helm, {"sidecar": sidecar or {}}), "Deployment", "echo-telegram-bot")
    return load_settings(container(deployment, "sidecar")["args"])


def test_unset_values_keep_the_sidecars_defaults(helm: Helm) -> None:
    settings = sidecar_settings(helm)
    defaults = Settings.model_fields
    for key, (_, field, _) in TUNED.items():
        if key != "readyRequiresUpstream":
            assert getattr(settings, field) == defaults[field].default, field
    # The chart's one deliberate difference: Ready only once the bot's dispatcher serves.
    assert settings.ready_requires_upstream is True
    args = container(one(render(helm), "Deployment", "echo-telegram-bot"), "sidecar")["args"]
    assert args.count("--ready-requires-upstream") == 1


def test_each_value_reaches_its_flag(helm: Helm) -> None:
    baseline = sidecar_settings(helm)
    settings = sidecar_settings(helm, {key: given for key, (given, _, _) in TUNED.items()})
    for key, (_, field, expected) in TUNED.items():
        assert getattr(settings, field) == expected, key
        assert getattr(baseline, field) != expected, f"{key}: pick a value other than the chart's default"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"maxConnections": 0}, "maxConnections"),
        ({"maxHeadBytes": 100}, "maxHeadBytes"),
        ({"headTimeout": 0}, "headTimeout"),
        ({"idleTimeout": "soon"}, "idleTimeout"),
        ({"sendTimeout": -1}, "sendTimeout"),
        ({"dedupWindow": -1}, "dedupWindow"),
        ({"readyRequiresUpstream": "yes"}, "readyRequiresUpstream"),
    ],
)
def test_schema_rejects_bad_bounds(any_helm: Helm, extra: dict[str, Any], message: str) -> None:
    result = any_helm.template(BOT_CHART, merge(BOT_MINIMAL_VALUES, {"sidecar": extra}), check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr


DEAD_LETTERS: dict[str, Any] = {
    "maxDeliveryAttempts": 3,
    "deadLetter": {"volume": {"persistentVolumeClaim": {"claimName": "echo-dead-letters"}}},
}


def check_dead_letters(deployment: Obj) -> None:
    sidecar, bot = container(deployment, "sidecar"), container(deployment, "bot")
    settings = load_settings(sidecar["args"])
    assert settings.max_delivery_attempts == 3
    # $(POD_NAME) is expanded by the kubelet from the env below: one file per pod.
    assert str(settings.dead_letter_file) == "/var/lib/tgbot/dead-letters/$(POD_NAME).jsonl"
    assert {
        "name": "POD_NAME",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
    } in sidecar["env"]
    assert {"name": "dead-letters", "mountPath": "/var/lib/tgbot/dead-letters"} in sidecar["volumeMounts"]
    assert "dead-letters" not in {m["name"] for m in bot["volumeMounts"]}, "update bodies: the sidecar's only"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dead-letters"] == {
        "name": "dead-letters",
        "persistentVolumeClaim": {"claimName": "echo-dead-letters"},
    }


def test_poison_update_limit_and_dead_letter_volume(helm: Helm) -> None:
    baseline = one(render(helm), "Deployment", "echo-telegram-bot")
    settings = load_settings(container(baseline, "sidecar")["args"])
    assert settings.max_delivery_attempts == Settings.model_fields["max_delivery_attempts"].default
    assert settings.dead_letter_file is None
    assert "dead-letters" not in {v["name"] for v in baseline["spec"]["template"]["spec"]["volumes"]}
    check_dead_letters(one(render(helm, {"sidecar": DEAD_LETTERS}), "Deployment", "echo-telegram-bot"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"maxDeliveryAttempts": -1}, "maxDeliveryAttempts"),
        ({"deadLetter": {"volume": {"name": "x", "emptyDir": {}}}}, "volume"),
        ({"deadLetter": {"mountPath": "/run/tgbot/dl"}}, "mountPath"),
        ({"deadLetter": {"mountPath": "relative"}}, "mountPath"),
    ],
)
def test_schema_rejects_bad_dead_letter_values(any_helm: Helm, extra: dict[str, Any], message: str) -> None:
    result = any_helm.template(BOT_CHART, merge(BOT_MINIMAL_VALUES, {"sidecar": extra}), check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr
