"""The telegram-bot-operator chart, rendered (no cluster): arguments, RBAC, peering, options."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.charts.chartlib import (
    CHART_CRD_COPY,
    CRD_FILE,
    CRD_NAME,
    OPERATOR_CHART,
    Helm,
    Obj,
    container,
    find,
    one,
    rules_as_set,
)
from tgbot_operator.cli import settings_from_args

# What the operator calls, and so all it may do, in a namespace it serves (see the comment on
# tgbot-operator.namespacedRules for which call needs which verb).
NAMESPACED_PERMISSIONS = {
    ("tgbot.dev", "telegrambots", "list"),
    ("tgbot.dev", "telegrambots", "watch"),
    ("tgbot.dev", "telegrambots", "patch"),
    ("tgbot.dev", "telegrambots/status", "patch"),
    ("", "secrets", "get"),
    ("", "secrets", "create"),
    ("", "secrets", "update"),
    ("", "secrets", "list"),  # the metadata-only watch (operator.secretReads: watch)
    ("", "secrets", "watch"),
    ("", "events", "create"),
}
# What kopf needs cluster-wide in any mode.
KOPF_PERMISSIONS = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
}
PEERING_VERBS = ("list", "watch", "patch")
# Granted before and never called (kopf GETs nothing by name, writes status with a patch, posts
# core v1 Events only, the operator replaces its Secret with PUT): they must not come back.
UNUSED_PERMISSIONS = {
    ("tgbot.dev", "telegrambots", "get"),
    ("tgbot.dev", "telegrambots/status", "get"),
    ("tgbot.dev", "telegrambots/status", "update"),
    ("", "secrets", "patch"),
    ("", "events", "patch"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "get"),
}


def render(helm: Helm, values: dict[str, Any] | None = None) -> list[Obj]:
    return helm.render(OPERATOR_CHART, values, release="tgbot", namespace="tgbot-system")


def operator_args(objs: list[Obj]) -> list[str]:
    args: list[str] = container(one(objs, "Deployment"), "operator")["args"]
    return args


def test_default_deployment(helm: Helm) -> None:
    objs = render(helm)
    deployment = one(objs, "Deployment", "tgbot-telegram-bot-operator")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "tgbot-telegram-bot-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(deployment, "operator")
    assert operator["image"] == "tgbot-operator:0.1.0"
    assert "command" not in operator, "the image's ENTRYPOINT runs the operator"
    assert operator["args"] == [
        "--all-namespaces",
        "--liveness-listen=0.0.0.0:8080",
        "--metrics-listen=0.0.0.0:9090",
        "--log-level=info",
        "--secret-reads=watch",
    ]
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {"health": 8080, "metrics": 9090}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in operator["env"]
    # Nothing optional by default.
    for kind in ("ServiceMonitor", "PodDisruptionBudget", "Role", "RoleBinding"):
        assert not find(objs, kind), kind
    assert not [o for o in objs if o["apiVersion"].startswith("kopf.dev/")]
    assert [o["metadata"]["name"] for o in find(objs, "CustomResourceDefinition")] == [CRD_NAME]


def test_default_arguments_are_accepted_by_the_operator_cli(helm: Helm) -> None:
    settings = settings_from_args(operator_args(render(helm)))
    assert settings.clusterwide
    assert settings.liveness_listen == "0.0.0.0:8080"
    assert settings.metrics_listen == "0.0.0.0:9090"
    assert settings.peering is None


def test_every_option_reaches_the_operator_cli(helm: Helm) -> None:
    values = {
        "watchNamespaces": ["bots-a", "bots-b"],
        "operator": {
            "logFormat": "json",
            "logLevel": "debug",
            "defaultBotApiServer": "http://telegram-bot-api.bots:8081",
            "checkInterval": "5m",
            "tokenCheckInterval": "45s",
            "rotationPropagationGrace": "2m",
            "rotationRetireGrace": "3m",
            "deletionTimeout": "10m",
            "unauthorizedRetryInterval": "15m",
            "telegramTimeout": "20s",
            "botApiRateLimit": 25,
            "livenessPort": 8081,
            "metricsPort": 9091,
        },
        "peering": {"enabled": True, "name": "bots"},
    }
    args = operator_args(render(helm, values))
    assert args[:2] == ["--namespace=bots-a", "--namespace=bots-b"]
    settings = settings_from_args(args)
    assert settings.namespaces == ["bots-a", "bots-b"]
    assert settings.json_logs is True
    assert settings.log_level == "debug"
    assert settings.default_bot_api_server == "http://telegram-bot-api.bots:8081"
    assert settings.check_interval == 300
    assert settings.token_check_interval == 45
    assert settings.rotation_propagation_grace == 120
    assert settings.rotation_retire_grace == 180
    assert settings.deletion_timeout == 600
    assert settings.unauthorized_retry_interval == 900
    assert settings.telegram_timeout == 20
    assert settings.bot_api_rate_limit == 25
    assert settings.liveness_listen == "0.0.0.0:8081"
    assert settings.metrics_listen == "0.0.0.0:9091"
    assert settings.peering == "bots"


def test_a_fractional_bot_api_rate_limit_reaches_the_operator(helm: Helm) -> None:
    args = operator_args(render(helm, {"operator": {"botApiRateLimit": 0.5}}))
    assert "--bot-api-rate-limit=0.5" in args
    assert settings_from_args(args).bot_api_rate_limit == 0.5


def test_extra_args_and_env_come_last(helm: Helm) -> None:
    objs = render(
        helm,
        {"operator": {"extraArgs": ["--log-level=warning"], "extraEnv": [{"name": "A", "value": "b"}]}},
    )
    operator = container(one(objs, "Deployment"), "operator")
    assert operator["args"][-1] == "--log-level=warning"
    assert settings_from_args(operator["args"]).log_level == "warning"
    assert {"name": "A", "value": "b"} in operator["env"]


def test_no_bot_api_server_is_allowed_beyond_the_default_by_default(helm: Helm) -> None:
    args = operator_args(render(helm))
    assert not [a for a in args if a.startswith("--allow-bot-api-server")]
    assert not [
        e for e in container(one(render(helm), "Deployment"), "operator")["env"] if "ALLOW" in e["name"]
    ]


def test_allowed_bot_api_servers_become_one_flag_each(helm: Helm) -> None:
    servers = ["http://telegram-bot-api.bots:8081", "https://bot-api.example.com"]
    args = operator_args(render(helm, {"operator": {"allowBotApiServers": servers}}))
    assert [a for a in args if a.startswith("--allow-bot-api-server")] == [
        f"--allow-bot-api-server={s}" for s in servers
    ]
    settings = settings_from_args(args)
    allowed = getattr(settings, "allow_bot_api_server", None)
    if allowed is None:
        pytest.fail("the operator has no --allow-bot-api-server setting (allow_bot_api_server)")
    assert [str(url).rstrip("/") for url in allowed] == servers


def test_secrets_policy_binds_the_operators_account(helm: Helm) -> None:
    objs = render(helm)
    policy = one(objs, "ValidatingAdmissionPolicy", "tgbot-system-tgbot-telegram-bot-operator-secrets")
    assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["secrets"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE", "DELETE"}
    (condition,) = spec["matchConditions"]
    assert condition["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:tgbot-system:tgbot-telegram-bot-operator'"
    )
    expressions = " ".join(v["expression"] for v in spec["validations"])
    assert "'app.kubernetes.io/managed-by'] == 'tgbot-operator'" in expressions
    assert "r.kind == 'TelegramBot'" in expressions
    binding = one(objs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    # A ServiceAccount of your own is the one bound.
    objs = render(helm, {"serviceAccount": {"create": False, "name": "mine"}})
    (condition,) = one(objs, "ValidatingAdmissionPolicy")["spec"]["matchConditions"]
    assert condition["expression"].endswith(":tgbot-system:mine'")
    assert not find(render(helm, {"secretsPolicy": {"enabled": False}}), "ValidatingAdmissionPolicy")


def test_cluster_wide_rbac_is_exactly_the_operators_verbs(helm: Helm) -> None:
    objs = render(helm)
    roles = {r["metadata"]["name"]: r for r in find(objs, "ClusterRole")}
    assert set(roles) == {
        "tgbot-system-tgbot-telegram-bot-operator",
        "tgbot-system-tgbot-telegram-bot-operator-kopf",
    }
    assert rules_as_set(roles["tgbot-system-tgbot-telegram-bot-operator"]["rules"]) == NAMESPACED_PERMISSIONS
    assert rules_as_set(roles["tgbot-system-tgbot-telegram-bot-operator-kopf"]["rules"]) == KOPF_PERMISSIONS
    for binding in find(objs, "ClusterRoleBinding"):
        assert binding["roleRef"]["name"] in roles
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "tgbot-telegram-bot-operator", "namespace": "tgbot-system"}
        ]
    everything = rules_as_set(r for role in roles.values() for r in role["rules"])
    assert not {p for p in everything if p[2] in {"delete", "deletecollection", "*"} or "*" in p}
    assert not everything & UNUSED_PERMISSIONS


def test_poll_mode_drops_list_and_watch_on_secrets(helm: Helm) -> None:
    objs = render(helm, {"operator": {"secretReads": "poll"}})
    operator = container(one(objs, "Deployment", "tgbot-telegram-bot-operator"), "operator")
    assert "--secret-reads=poll" in operator["args"]
    roles = [o for kind in ("ClusterRole", "Role") for o in find(objs, kind)]
    everything = rules_as_set(r for role in roles for r in role["rules"])
    assert ("", "secrets", "get") in everything
    assert ("", "secrets", "list") not in everything
    assert ("", "secrets", "watch") not in everything


def test_namespaced_rbac_has_one_role_per_watched_namespace(helm: Helm) -> None:
    objs = render(helm, {"watchNamespaces": ["bots-a", "bots-b"]})
    roles = find(objs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["bots-a", "bots-b"]
    for role in roles:
        assert rules_as_set(role["rules"]) == NAMESPACED_PERMISSIONS
    bindings = find(objs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["bots-a", "bots-b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "tgbot-telegram-bot-operator",
        }
        assert binding["subjects"][0]["namespace"] == "tgbot-system"
    # Only kopf's own cluster-scoped needs stay cluster-wide.
    (cluster_role,) = find(objs, "ClusterRole")
    assert rules_as_set(cluster_role["rules"]) == KOPF_PERMISSIONS


def test_rbac_can_be_left_out(helm: Helm) -> None:
    objs = render(helm, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}})
    assert not find(objs, "ClusterRole")
    assert not find(objs, "ClusterRoleBinding")
    assert not find(objs, "ServiceAccount")
    assert one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


def peering_objects(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o["apiVersion"] == "kopf.dev/v1"]


def test_replicas_turn_cluster_peering_on(helm: Helm) -> None:
    objs = render(helm, {"replicaCount": 2})
    assert "--peering=tgbot-telegram-bot-operator" in operator_args(objs)
    assert settings_from_args(operator_args(objs)).peering == "tgbot-telegram-bot-operator"
    crds = {o["metadata"]["name"]: o for o in find(objs, "CustomResourceDefinition")}
    assert set(crds) == {CRD_NAME, "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"}
    assert crds["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    assert crds["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    (peering,) = peering_objects(objs)
    assert peering["kind"] == "ClusterKopfPeering"
    assert peering["metadata"]["name"] == "tgbot-telegram-bot-operator"
    assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    kopf_role = one(objs, "ClusterRole", "tgbot-system-tgbot-telegram-bot-operator-kopf")
    assert {("kopf.dev", "clusterkopfpeerings", v) for v in PEERING_VERBS} <= rules_as_set(kopf_role["rules"])


def test_namespaced_peering(helm: Helm) -> None:
    objs = render(helm, {"peering": {"enabled": True, "installCRDs": False}, "watchNamespaces": ["a", "b"]})
    assert [o["metadata"]["name"] for o in find(objs, "CustomResourceDefinition")] == [CRD_NAME]
    peerings = peering_objects(objs)
    assert {(p["kind"], p["metadata"]["namespace"]) for p in peerings} == {
        ("KopfPeering", "a"),
        ("KopfPeering", "b"),
    }
    for role in find(objs, "Role"):
        assert rules_as_set(role["rules"]) == NAMESPACED_PERMISSIONS | {
            ("kopf.dev", "kopfpeerings", v) for v in PEERING_VERBS
        }
    (cluster_role,) = find(objs, "ClusterRole")
    assert rules_as_set(cluster_role["rules"]) == KOPF_PERMISSIONS


def test_service_monitor_and_pdb_when_enabled(helm: Helm) -> None:
    objs = render(
        helm,
        {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}, "interval": "15s"},
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        },
    )
    monitor = one(objs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    service = one(objs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"metrics": 9090, "health": 8080}
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]
    assert pdb["spec"]["selector"] == one(objs, "Deployment")["spec"]["selector"]


def test_scheduling_and_image_options(helm: Helm) -> None:
    digest = "sha256:" + "a" * 64
    objs = render(
        helm,
        {
            "image": {"repository": "registry.local/op", "digest": digest, "pullPolicy": "Always"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {}},
            "resources": {"limits": {"memory": "1Gi"}},
        },
    )
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"registry.local/op@{digest}"
    assert pod["containers"][0]["imagePullPolicy"] == "Always"
    assert pod["containers"][0]["resources"]["limits"] == {"memory": "1Gi"}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["affinity"] == {"nodeAffinity": {}}


def test_helm_test_pod_curls_the_service(helm: Helm) -> None:
    objs = render(helm)
    pod = one(objs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    curl = pod["spec"]["containers"][0]
    service = one(objs, "Service")["metadata"]["name"]
    assert f"http://{service}:8080/healthz" in curl["args"]
    assert f"http://{service}:9090/metrics" in curl["args"]
    assert curl["securityContext"]["allowPrivilegeEscalation"] is False
    assert curl["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def strip_chart_metadata(crd: Obj) -> Obj:
    """The CRD without what the chart adds (labels, Helm annotations) and without the file's ones."""
    crd = yaml.safe_load(yaml.safe_dump(crd))
    crd["metadata"].pop("labels", None)
    crd["metadata"].pop("annotations", None)
    return crd


def test_chart_crd_matches_crds_folder(helm: Helm) -> None:
    assert CRD_FILE.exists(), (
        f"{CRD_FILE} does not exist: the TelegramBot CRD must be written before the chart can ship it"
    )
    source = yaml.safe_load(CRD_FILE.read_text())
    # The chart's file is a symlink to crds/ (Helm includes the linked content), so they cannot drift.
    assert CHART_CRD_COPY.resolve() == CRD_FILE.resolve(), f"{CHART_CRD_COPY} must link to {CRD_FILE}"
    rendered = one(render(helm), "CustomResourceDefinition", CRD_NAME)
    assert strip_chart_metadata(rendered) == strip_chart_metadata(source)
    # The file's own labels survive; the chart adds its own and the keep policy.
    assert source["metadata"].get("labels", {}).items() <= rendered["metadata"]["labels"].items()
    assert rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert rendered["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_crd_can_be_left_out(helm: Helm) -> None:
    assert not find(render(helm, {"crds": {"install": False}}), "CustomResourceDefinition")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"replicasCount": 2}, "replicasCount"),
        ({"operator": {"logFormat": "xml"}}, "logFormat"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"operator": {"allowBotApiServers": ["api.telegram.org"]}}, "allowBotApiServers"),
        ({"operator": {"allowBotApiServers": ["https://user:pw@bots.example.com"]}}, "allowBotApiServers"),
        ({"operator": {"allowBotApiServers": ["https://bots.example.com/?x=1"]}}, "allowBotApiServers"),
        ({"secretsPolicy": {"enabled": "yes"}}, "secretsPolicy"),
        ({"operator": {"botApiRateLimit": 0}}, "botApiRateLimit"),
        ({"operator": {"botApiRateLimit": "fast"}}, "botApiRateLimit"),
    ],
)
def test_schema_rejects_bad_values(any_helm: Helm, values: dict[str, Any], message: str) -> None:
    result = any_helm.template(OPERATOR_CHART, values, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr
