"""helm lint --strict, and values.schema.json declaring every value of values.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tests.charts.chartlib import BOT_CHART, OPERATOR_CHART, Helm


def lint_cases() -> Iterator[Any]:
    yield pytest.param(OPERATOR_CHART, None, id="operator-defaults")
    for chart in (OPERATOR_CHART, BOT_CHART):
        for values in sorted((chart / "ci").glob("*-values.yaml")):
            yield pytest.param(chart, values, id=f"{chart.name}-{values.stem}")


@pytest.mark.parametrize(("chart", "values"), list(lint_cases()))
def test_helm_lint_strict(helm: Helm, chart: Path, values: Path | None) -> None:
    args = ["lint", "--strict", str(chart)]
    if values is not None:
        args += ["-f", str(values)]
    result = helm.run(*args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def test_bot_chart_lint_fails_without_the_required_values(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(BOT_CHART), check=False)
    assert result.returncode != 0
    assert "bot" in result.stdout + result.stderr


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
