"""The bot chart's `helm test` pod (templates/tests/test-delivery.yaml) and spec.profile from the
values, rendered with the real helm. tests/pods/test_helm_test.py runs the hook on pods."""

from __future__ import annotations

from tests.charts.chartlib import Helm, Obj, one
from tests.charts.test_bot_chart import render


def _test_pod(objs: list[Obj]) -> Obj:
    pod = one(objs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "helm-test"
    return pod


def _env(pod: Obj) -> dict[str, Obj]:
    (c,) = pod["spec"]["containers"]
    return {e["name"]: e for e in c["env"]}


def test_the_test_pod_asks_telegram_by_default_with_the_token_from_its_secret(helm: Helm) -> None:
    pod = _test_pod(render(helm))
    env = _env(pod)
    assert env["API"]["value"] == "https://api.telegram.org"
    assert env["BOT_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    assert env["READYZ"]["value"] == "http://echo-telegram-bot:9090/readyz"
    (c,) = pod["spec"]["containers"]
    script = c["args"][0]
    # Telegram cannot be made to deliver: no emulator control call unless asked for.
    assert "_emulator" not in script
    assert "set -x" not in script, "a traced script would print the token"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_emulator_round_trip_and_a_self_hosted_server(helm: Helm) -> None:
    pod = _test_pod(
        render(
            helm,
            {
                "telegramBot": {"botApiServer": "http://emulator.bots:8081/"},
                "helmTest": {"emulatorRoundTrip": True, "timeoutSeconds": 30},
            },
        )
    )
    env = _env(pod)
    assert env["API"]["value"] == "http://emulator.bots:8081"
    assert env["TIMEOUT"]["value"] == "30"
    (c,) = pod["spec"]["containers"]
    assert "/_emulator/bots/$bot_id/wait-delivered" in c["args"][0]


def test_profile_values_become_the_telegrambots_spec_profile(helm: Helm) -> None:
    profile = {
        "commands": [{"scope": {"type": "default"}, "commands": [{"command": "start", "description": "Go"}]}],
        "menuButton": {"type": "commands"},
    }
    bot = one(render(helm, {"telegramBot": {"profile": profile}}), "TelegramBot")
    assert bot["spec"]["profile"] == profile
    assert "profile" not in one(render(helm), "TelegramBot")["spec"], "undeclared: no profile call"
