"""helm lint --strict with each Helm major, the same objects from both, and values.schema.json
declaring every value of values.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tests.charts.chartlib import BOT_CHART, BOT_MINIMAL_VALUES, OPERATOR_CHART, Helm, parse_manifests


def lint_cases() -> Iterator[Any]:
    yield pytest.param(OPERATOR_CHART, None, id="operator-defaults")
    for chart in (OPERATOR_CHART, BOT_CHART):
        for values in sorted((chart / "ci").glob("*-values.yaml")):
            yield pytest.param(chart, values, id=f"{chart.name}-{values.stem}")


@pytest.mark.parametrize(("chart", "values"), list(lint_cases()))
def test_helm_lint_strict(any_helm: Helm, chart: Path, values: Path | None) -> None:
    args = ["lint", "--strict", str(chart)]
    if values is not None:
        args += ["-f", str(values)]
    result = any_helm.run(*args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def test_bot_chart_lint_names_the_required_values(any_helm: Helm) -> None:
    # Lint renders in lint mode, where `required` only reports (template/install fail on it: see
    # test_images.py); the bot image and the token Secret have no default.
    result = any_helm.run("lint", "--strict", str(BOT_CHART), check=False)
    output = result.stdout + result.stderr
    assert "bot.image.repository is required" in output, output
    assert "token.secretName is required" in output, output


def render_cases() -> Iterator[Any]:
    for chart in (OPERATOR_CHART, BOT_CHART):
        for values in sorted((chart / "ci").glob("*-values.yaml")):
            yield pytest.param(chart, yaml.safe_load(values.read_text()), id=f"{chart.name}-{values.stem}")
    yield pytest.param(OPERATOR_CHART, {}, id="operator-defaults")
    yield pytest.param(
        OPERATOR_CHART,
        {
            "watchNamespaces": ["a", "b"],
            "replicaCount": 2,
            "operator": {"allowBotApiServers": ["http://telegram-bot-api.bots:8081"]},
            "serviceMonitor": {"enabled": True},
            "podDisruptionBudget": {"enabled": True},
        },
        id="operator-options",
    )
    yield pytest.param(BOT_CHART, BOT_MINIMAL_VALUES, id="bot-minimal")
    yield pytest.param(
        BOT_CHART,
        {
            **BOT_MINIMAL_VALUES,
            "sidecar": {"trustedProxies": ["10.42.0.0/16"]},
            "networkPolicy": {"monitoring": None, "webhookFrom": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]},
            "telegramBot": {"webhook": {"certificate": {"mode": "Secret", "secretName": "tls"}}},
        },
        id="bot-options",
    )


@pytest.mark.parametrize(("chart", "values"), list(render_cases()))
def test_helm_3_and_4_render_the_same_objects(
    helm: Helm, helm3: Helm, chart: Path, values: dict[str, Any]
) -> None:
    """What the render tests check with Helm 4 holds for Helm 3: both produce the same objects."""
    four = parse_manifests(helm.template(chart, values).stdout)
    three = parse_manifests(helm3.template(chart, values).stdout)
    assert four, "nothing rendered"
    assert three == four


def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from leaf_paths(value, (*prefix, key))
    else:
        yield prefix


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            for key, value in resolve(part, root).items():
                if key == "properties":
                    merged.setdefault("properties", {}).update(value)
                else:
                    merged[key] = value
        return merged
    return schema


def declared(schema: dict[str, Any], path: tuple[str, ...]) -> bool:
    node = schema
    for key in path:
        node = resolve(node, schema)
        properties = node.get("properties", {})
        if key in properties:
            node = properties[key]
            continue
        # A free-form map (labels, resources, securityContext...) declares no keys.
        return isinstance(node.get("additionalProperties"), dict) or (
            node.get("type") == "object" and "properties" not in node
        )
    return True


@pytest.mark.parametrize("chart", [OPERATOR_CHART, BOT_CHART], ids=lambda c: c.name)
def test_schema_declares_every_value(chart: Path) -> None:
    schema = json.loads((chart / "values.schema.json").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    missing = [".".join(path) for path in leaf_paths(values) if not declared(schema, path)]
    assert not missing, f"values without a schema: {missing}"
    assert set(values) <= set(schema["properties"])


@pytest.mark.parametrize("chart", [OPERATOR_CHART, BOT_CHART], ids=lambda c: c.name)
def test_ci_values_and_defaults_are_valid(chart: Path) -> None:
    schema = json.loads((chart / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    for path in sorted((chart / "ci").glob("*-values.yaml")):
        jsonschema.validate(merge(defaults, yaml.safe_load(path.read_text())), schema)
    if chart == OPERATOR_CHART:
        jsonschema.validate(defaults, schema)


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out
