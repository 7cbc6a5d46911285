"""The telegram-bot chart, rendered (no cluster): bot + sidecar wiring, TelegramBot, options."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.charts.chartlib import BOT_CHART, BOT_MINIMAL_VALUES, Helm, Obj, container, find, one
from tgbot_sidecar.cli import load_settings


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def render(helm: Helm, extra: dict[str, Any] | None = None) -> list[Obj]:
    return helm.render(BOT_CHART, merge(BOT_MINIMAL_VALUES, extra or {}), release="echo", namespace="bots")


def volume_mounts(c: Obj) -> dict[str, Obj]:
    return {m["name"]: m for m in c.get("volumeMounts", [])}


def test_bot_and_sidecar_are_wired_together(helm: Helm) -> None:
    objs = render(helm)
    deployment = one(objs, "Deployment", "echo-telegram-bot")
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["bot", "sidecar"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["socket"]
    assert volumes["webhook-secret"]["secret"] == {
        "secretName": "echo-telegram-bot-webhook",
        "defaultMode": 0o440,
        "optional": True,
    }

    bot = container(deployment, "bot")
    assert bot["image"] == "registry.example.com/echo-bot:1.0.0"
    assert {"name": "BOT_SOCKET", "value": "/run/tgbot/bot.sock"} in bot["env"]
    assert {
        "name": "BOT_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "echo-token", "key": "token"}},
    } in bot["env"]
    assert volume_mounts(bot)["socket"]["mountPath"] == "/run/tgbot"
    assert "webhook-secret" not in volume_mounts(bot), "the bot never sees the webhook secret token"

    sidecar = container(deployment, "sidecar")
    assert sidecar["image"] == "tgbot-sidecar:0.1.0"
    assert "command" not in sidecar
    mounts = volume_mounts(sidecar)
    assert mounts["socket"]["mountPath"] == "/run/tgbot"
    assert mounts["webhook-secret"] == {
        "name": "webhook-secret",
        "mountPath": "/etc/tgbot/webhook",
        "readOnly": True,
    }
    assert "subPath" not in mounts["webhook-secret"], "a subPath mount would never see a rotated token"
    assert {p["name"]: p["containerPort"] for p in sidecar["ports"]} == {"webhook": 8443, "admin": 9090}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    for c in (bot, sidecar):
        security = c["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False


def test_sidecar_arguments_are_accepted_by_the_sidecar_cli(helm: Helm) -> None:
    sidecar = container(one(render(helm), "Deployment"), "sidecar")
    settings = load_settings(sidecar["args"])
    assert settings.listen == "0.0.0.0:8443"
    assert settings.admin_listen == "0.0.0.0:9090"
    assert settings.path == "/webhook"
    assert settings.secret_token_file == Path("/etc/tgbot/webhook/secret-token")
    assert settings.previous_secret_token_file == Path("/etc/tgbot/webhook/previous-secret-token")
    assert settings.upstream == "http://bot/webhook"
    assert settings.upstream_unix_socket == Path("/run/tgbot/bot.sock")
    assert settings.tls_cert is None
    assert settings.tls_key is None
    assert settings.trusted_proxy == []


def test_sidecar_options(helm: Helm) -> None:
    objs = render(
        helm,
        {
            "sidecar": {
                "trustedProxies": ["10.42.0.0/16"],
                "allowNetworks": ["149.154.160.0/20", "10.43.0.0/16"],
                "maxBodyBytes": 65536,
                "upstreamTimeout": 30,
                "maxInFlight": 10,
                "drainTimeout": 20,
                "logFormat": "json",
                "logLevel": "debug",
                "webhookPort": 8444,
                "adminPort": 9091,
            }
        },
    )
    sidecar = container(one(objs, "Deployment"), "sidecar")
    settings = load_settings(sidecar["args"])
    assert settings.trusted_proxy == ["10.42.0.0/16"]
    assert settings.allow_network == ["149.154.160.0/20", "10.43.0.0/16"]
    assert settings.max_body_bytes == 65536
    assert settings.upstream_timeout == 30
    assert settings.max_in_flight == 10
    assert settings.drain_timeout == 20
    assert settings.json_logs is True
    assert settings.log_level == "debug"
    assert settings.listen == "0.0.0.0:8444"
    service = one(objs, "Service")
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "webhook": (8444, "webhook"),
        "admin": (9091, "admin"),
    }


def test_telegram_bot_url_is_derived_from_the_ingress(helm: Helm) -> None:
    objs = render(helm, {"telegramBot": {"webhook": {"path": "/tg/echo"}}})
    bot = one(objs, "TelegramBot", "echo-telegram-bot")
    assert bot["apiVersion"] == "tgbot.dev/v1alpha1"
    assert bot["metadata"]["namespace"] == "bots"
    assert bot["spec"] == {
        "tokenSecretRef": {"name": "echo-token", "key": "token"},
        "webhook": {
            "url": "https://bot.example.com/tg/echo",
            "maxConnections": 40,
            "dropPendingUpdates": False,
            "certificate": {"mode": "None"},
        },
        "deletionPolicy": "DeleteWebhook",
    }
    ingress = one(objs, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "bot.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/tg/echo"
    assert path["backend"]["service"] == {"name": "echo-telegram-bot", "port": {"name": "webhook"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["bot.example.com"]}]
    sidecar = container(one(objs, "Deployment"), "sidecar")
    assert load_settings(sidecar["args"]).path == "/tg/echo"


def test_explicit_url_and_every_telegram_bot_field(helm: Helm) -> None:
    objs = render(
        helm,
        {
            "ingress": {"enabled": False},
            "telegramBot": {
                "name": "echo",
                "botApiServer": "http://emulator.bots:8081",
                "webhook": {
                    "url": "https://hooks.example.org:8443/echo/in",
                    "allowedUpdates": ["message", "callback_query"],
                    "maxConnections": 10,
                    "dropPendingUpdates": True,
                    "ipAddress": "203.0.113.7",
                },
                "secretToken": {"rotationInterval": "720h"},
                "deletionPolicy": "Keep",
            },
        },
    )
    assert not find(objs, "Ingress")
    bot = one(objs, "TelegramBot", "echo")
    assert bot["spec"] == {
        "tokenSecretRef": {"name": "echo-token", "key": "token"},
        "botApiServer": "http://emulator.bots:8081",
        "webhook": {
            "url": "https://hooks.example.org:8443/echo/in",
            "allowedUpdates": ["message", "callback_query"],
            "maxConnections": 10,
            "dropPendingUpdates": True,
            "ipAddress": "203.0.113.7",
            "certificate": {"mode": "None"},
        },
        "secretToken": {"rotationInterval": "720h"},
        "deletionPolicy": "Keep",
    }
    deployment = one(objs, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-secret"]["secret"]["secretName"] == "echo-webhook"
    assert load_settings(container(deployment, "sidecar")["args"]).path == "/echo/in"


def test_self_signed_mode_serves_tls_from_the_generated_secret(helm: Helm) -> None:
    objs = render(helm, {"telegramBot": {"webhook": {"certificate": {"mode": "SelfSigned"}}}})
    assert one(objs, "TelegramBot")["spec"]["webhook"]["certificate"] == {"mode": "SelfSigned"}
    settings = load_settings(container(one(objs, "Deployment"), "sidecar")["args"])
    assert settings.tls_cert == Path("/etc/tgbot/webhook/tls.crt")
    assert settings.tls_key == Path("/etc/tgbot/webhook/tls.key")
    # The sidecar cannot start without its certificate: the pod waits for the Secret.
    volumes = {v["name"]: v for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-secret"]["secret"]["optional"] is False


def test_secret_mode_serves_tls_from_the_certificate_secret(helm: Helm) -> None:
    objs = render(
        helm, {"telegramBot": {"webhook": {"certificate": {"mode": "Secret", "secretName": "bot-tls"}}}}
    )
    assert one(objs, "TelegramBot")["spec"]["webhook"]["certificate"] == {
        "mode": "Secret",
        "secretRef": {"name": "bot-tls"},
    }
    deployment = one(objs, "Deployment")
    sidecar = container(deployment, "sidecar")
    settings = load_settings(sidecar["args"])
    assert settings.tls_cert == Path("/etc/tgbot/tls/tls.crt")
    assert volume_mounts(sidecar)["webhook-tls"]["readOnly"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-tls"]["secret"]["secretName"] == "bot-tls"


def test_token_secret_from_a_value(helm: Helm) -> None:
    objs = render(helm, {"token": {"secretName": "", "create": True, "value": "123:abc", "key": "bot-token"}})
    secret = one(objs, "Secret", "echo-telegram-bot-token")
    assert secret["stringData"] == {"bot-token": "123:abc"}
    assert one(objs, "TelegramBot")["spec"]["tokenSecretRef"] == {
        "name": "echo-telegram-bot-token",
        "key": "bot-token",
    }
    bot = container(one(objs, "Deployment"), "bot")
    assert {
        "name": "BOT_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "echo-telegram-bot-token", "key": "bot-token"}},
    } in bot["env"]


def test_bot_container_options(helm: Helm) -> None:
    objs = render(
        helm,
        {
            "bot": {
                "command": ["python", "-m", "echo_bot"],
                "args": ["--verbose"],
                "env": [{"name": "LOG_LEVEL", "value": "debug"}],
                "resources": {"limits": {"memory": "1Gi"}},
            },
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "bots", "operator": "Exists"}],
        },
    )
    deployment = one(objs, "Deployment")
    bot = container(deployment, "bot")
    assert bot["command"] == ["python", "-m", "echo_bot"]
    assert bot["args"] == ["--verbose"]
    assert {"name": "LOG_LEVEL", "value": "debug"} in bot["env"]
    assert bot["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}}
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}


INGRESS_NGINX_PODS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
    "podSelector": {
        "matchLabels": {
            "app.kubernetes.io/name": "ingress-nginx",
            "app.kubernetes.io/component": "controller",
        }
    },
}
TELEGRAM_BLOCKS = [{"ipBlock": {"cidr": "149.154.160.0/20"}}, {"ipBlock": {"cidr": "91.108.4.0/22"}}]


def policy_rules(objs: list[Obj]) -> dict[str, list[Obj]]:
    """port name -> the peers allowed to reach it."""
    policy = one(objs, "NetworkPolicy")
    rules: dict[str, list[Obj]] = {}
    for rule in policy["spec"]["ingress"]:
        (port,) = [p["port"] for p in rule["ports"]]
        rules[port] = rule["from"]
    return rules


#: The release's own `helm test` pod asks the sidecar's /readyz (templates/tests/test-delivery.yaml).
HELM_TEST_PEER = {
    "podSelector": {
        "matchLabels": {"app.kubernetes.io/instance": "echo", "app.kubernetes.io/component": "helm-test"}
    }
}


def test_network_policy_is_on_by_default(helm: Helm) -> None:
    policy = one(render(helm), "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "telegram-bot",
        "app.kubernetes.io/instance": "echo",
    }
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert [r["ports"] for r in policy["spec"]["ingress"]] == [
        [{"port": "webhook", "protocol": "TCP"}],
        [{"port": "admin", "protocol": "TCP"}],
    ]
    rules = policy_rules(render(helm))
    # One peer with both selectors: the controller's pods in its namespace, not every pod there
    # and not pods of that name elsewhere.
    assert rules["webhook"] == [INGRESS_NGINX_PODS, *TELEGRAM_BLOCKS]
    assert rules["admin"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {},
        },
        HELM_TEST_PEER,
    ]


def test_network_policy_selectors_and_extra_peers(helm: Helm) -> None:
    traefik = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
    }
    # Helm merges maps with the defaults: a default label the controller lacks is dropped with null.
    traefik_values = merge(traefik, {"podSelector": {"matchLabels": {"app.kubernetes.io/component": None}}})
    prometheus = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
    extra_admin = {"ipBlock": {"cidr": "10.0.5.0/24"}}
    rules = policy_rules(
        render(
            helm,
            {
                "networkPolicy": {
                    "ingressController": traefik_values,
                    "webhookFrom": [{"ipBlock": {"cidr": "10.1.0.0/16"}}],
                    "telegramCIDRs": [],
                    "monitoring": {"namespaceSelector": None, **prometheus},
                    "adminFrom": [extra_admin],
                }
            },
        )
    )
    assert rules["webhook"] == [traefik, {"ipBlock": {"cidr": "10.1.0.0/16"}}]
    # namespaceSelector null: only the pod selector, so the release namespace's Prometheus pods.
    assert rules["admin"] == [prometheus, extra_admin, HELM_TEST_PEER]

    rules = policy_rules(render(helm, {"networkPolicy": {"ingressController": None, "monitoring": None}}))
    assert rules == {"webhook": TELEGRAM_BLOCKS, "admin": [HELM_TEST_PEER]}, (
        "on the admin port only the kubelet (not subject to policies) and the release's helm test pod"
    )


def test_network_policy_can_be_turned_off(helm: Helm) -> None:
    assert not find(render(helm, {"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_trusted_proxies_come_with_the_network_policy(helm: Helm) -> None:
    objs = render(helm, {"sidecar": {"trustedProxies": ["10.42.0.0/16"]}})
    assert load_settings(container(one(objs, "Deployment"), "sidecar")["args"]).trusted_proxy == [
        "10.42.0.0/16"
    ]
    assert policy_rules(objs)["webhook"][0] == INGRESS_NGINX_PODS


def test_trusted_proxies_without_the_network_policy_are_refused(any_helm: Helm) -> None:
    values = merge(
        BOT_MINIMAL_VALUES,
        {"sidecar": {"trustedProxies": ["10.42.0.0/16"]}, "networkPolicy": {"enabled": False}},
    )
    result = any_helm.template(BOT_CHART, values, check=False)
    assert result.returncode != 0
    assert "sidecar.trustedProxies is set but networkPolicy.enabled is false" in result.stderr
    assert "could forge X-Forwarded-For" in result.stderr
    assert "sidecar.trustedProxiesWithoutNetworkPolicy=true" in result.stderr


def test_trusted_proxies_without_the_network_policy_when_acknowledged(any_helm: Helm) -> None:
    values = merge(
        BOT_MINIMAL_VALUES,
        {
            "sidecar": {"trustedProxies": ["10.42.0.0/16"], "trustedProxiesWithoutNetworkPolicy": True},
            "networkPolicy": {"enabled": False},
        },
    )
    objs = any_helm.render(BOT_CHART, values, release="echo", namespace="bots")
    assert not find(objs, "NetworkPolicy")
    assert load_settings(container(one(objs, "Deployment"), "sidecar")["args"]).trusted_proxy == [
        "10.42.0.0/16"
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ingress": {"enabled": False}}, "telegramBot.webhook.url is required"),
        ({"token": {"secretName": ""}}, "token.secretName is required"),
        ({"token": {"secretName": "", "create": True}}, "token.value is required"),
        ({"telegramBot": {"webhook": {"certificate": {"mode": "Secret"}}}}, "secretName is required"),
        (
            {"networkPolicy": {"ingressController": None, "webhookFrom": [], "telegramCIDRs": []}},
            "nothing could deliver updates",
        ),
        (
            {"networkPolicy": {"ingressController": {"namespaceSelector": None, "podSelector": None}}},
            "networkPolicy.ingressController needs namespaceSelector and/or podSelector",
        ),
    ],
)
def test_missing_values_fail_with_a_message(any_helm: Helm, extra: dict[str, Any], message: str) -> None:
    result = any_helm.template(BOT_CHART, merge(BOT_MINIMAL_VALUES, extra), check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"telegramBot": {"webhook": {"certificate": {"mode": "Bogus"}}}}, "mode"),
        ({"telegramBot": {"webhook": {"maxConnections": 101}}}, "maxConnections"),
        ({"telegramBot": {"deletionPolicy": "Delete"}}, "deletionPolicy"),
        ({"sidecar": {"trustedProxies": ["everyone"]}}, "trustedProxies"),
        ({"sidecar": {"trustedProxiesWithoutNetworkPolicy": "yes"}}, "trustedProxiesWithoutNetworkPolicy"),
        ({"networkPolicy": {"ingressController": {"podSelector": {"app": "x"}}}}, "podSelector"),
        ({"unknown": True}, "unknown"),
    ],
)
def test_schema_rejects_bad_values(any_helm: Helm, extra: dict[str, Any], message: str) -> None:
    result = any_helm.template(BOT_CHART, merge(BOT_MINIMAL_VALUES, extra), check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr


def test_a_numeric_image_tag_renders_as_written(helm: Helm) -> None:
    # `--set bot.image.tag=42` arrives as a number; it must neither fail the schema nor print as %!s.
    objs = render(helm, {"bot": {"image": {"repository": "registry.example.com/echo", "tag": 42}}})
    assert (
        container(one(objs, "Deployment", "echo-telegram-bot"), "bot")["image"]
        == "registry.example.com/echo:42"
    )
