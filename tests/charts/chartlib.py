"""Helpers for the chart tests: finding helm, rendering charts, picking objects out of them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support import Cluster
from tgbot_localdev.controlplane import find_assets

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS = REPO_ROOT / "charts"
OPERATOR_CHART = CHARTS / "telegram-bot-operator"
BOT_CHART = CHARTS / "telegram-bot"
CRD_FILE = REPO_ROOT / "crds" / "telegrambots.tgbot.dev.yaml"
CHART_CRD_COPY = OPERATOR_CHART / "files" / "telegrambots.tgbot.dev.yaml"
CRD_NAME = "telegrambots.tgbot.dev"

#: Values the telegram-bot chart needs (it has no usable defaults for the bot image and token).
BOT_MINIMAL_VALUES: dict[str, Any] = {
    "bot": {"image": {"repository": "registry.example.com/echo-bot", "tag": "1.0.0"}},
    "token": {"secretName": "echo-token"},
    "ingress": {"enabled": True, "className": "nginx", "host": "bot.example.com"},
}

Obj = dict[str, Any]


#: The Helm majors the charts are tested with: the command (in the helm folder or on PATH) and
#: the major its ``helm version`` must report. Our build has ``helm`` (Helm 4) and ``helm3``.
HELM_COMMANDS = {"helm": 4, "helm3": 3}


def helm_folder() -> Path:
    """The folder holding the helm binary: KUBEBUILDER_ASSETS, PATH, or our cached build."""
    given = os.environ.get("KUBEBUILDER_ASSETS")
    if given and (Path(given) / "helm").exists():
        return Path(given)
    found = shutil.which("helm")
    if found:
        return Path(found).parent
    saved = os.environ.pop("KUBEBUILDER_ASSETS", None)
    try:
        return find_assets(sys.stderr)
    finally:
        if saved is not None:
            os.environ["KUBEBUILDER_ASSETS"] = saved


def find_helm(command: str) -> Path | None:
    """``command`` (``helm``, ``helm3``) beside our helm, else on PATH; None when there is none."""
    beside = helm_folder() / command
    if beside.exists():
        return beside
    found = shutil.which(command)
    return Path(found) if found else None


def helm_major(binary: Path | str, env: Mapping[str, str] | None = None) -> int:
    """The major version ``binary version`` reports (``v4.3.1+g...`` -> 4)."""
    out = subprocess.run(
        [str(binary), "version", "--short"],
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out.startswith("v"), out
    return int(out[1:].split(".", 1)[0])


class Helm:
    """helm without a cluster (lint, template), with its caches in a private folder."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.env = dict(
            os.environ,
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_DATA_HOME=str(home / "data"),
        )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def template(
        self,
        chart: Path,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "rel",
        namespace: str = "tgbot-system",
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        with values_file(values or {}) as path:
            return self.run(
                "template", release, str(chart), "--namespace", namespace, "-f", str(path), check=check
            )

    def render(
        self,
        chart: Path,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "rel",
        namespace: str = "tgbot-system",
    ) -> list[Obj]:
        return parse_manifests(self.template(chart, values, release=release, namespace=namespace).stdout)


class values_file:
    """A temporary values file (JSON is YAML) for ``helm -f``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.path: Path | None = None

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="values-", suffix=".yaml")
        with os.fdopen(fd, "w") as stream:
            json.dump(self.values, stream)
        self.path = Path(name)
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def parse_manifests(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objs: Iterable[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: Iterable[Obj], kind: str, name: str | None = None) -> Obj:
    found = find(objs, kind, name)
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def container(deployment: Obj, name: str) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    matches: list[Obj] = [c for c in containers if c["name"] == name]
    assert matches, f"no container {name} in {[c['name'] for c in containers]}"
    return matches[0]


def rules_as_set(rules: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """RBAC rules flattened to (apiGroup, resource, verb) triples."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def install(
    cluster: Cluster,
    release: str,
    chart: Path,
    namespace: str,
    values: Mapping[str, Any] | None = None,
    *args: str,
) -> subprocess.CompletedProcess[str]:
    """``helm upgrade --install`` without --wait: there is no kubelet, pods never run."""
    with values_file(values or {}) as path:
        return cluster.helm(
            "upgrade", "--install", release, str(chart), "-n", namespace, "-f", str(path), *args
        )


def get(cluster: Cluster, *args: str) -> Obj:
    result: Obj = json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)
    return result


def exists(cluster: Cluster, *args: str) -> bool:
    return cluster.kubectl("get", *args, "-o", "name", check=False).returncode == 0


def adopt_for_release(cluster: Cluster, resource: str, release: str, namespace: str) -> None:
    """Mark an existing object as the release's, so that helm takes it over instead of refusing.

    Cluster-scoped objects such as CRDs outlive the release (and the test namespace) that
    installed them; a later release may only manage them once they carry its ownership marks.
    """
    cluster.kubectl(
        "annotate",
        resource,
        f"meta.helm.sh/release-name={release}",
        f"meta.helm.sh/release-namespace={namespace}",
        "--overwrite",
    )
    cluster.kubectl("label", resource, "app.kubernetes.io/managed-by=Helm", "--overwrite")


class Releases:
    """Releases a test installed; uninstalled when it ends (cluster-scoped RBAC would stay)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.installed: list[tuple[str, str]] = []

    def track(self, namespace: str, release: str) -> str:
        self.installed.append((namespace, release))
        return release

    def cleanup(self) -> None:
        # No --wait flag: neither major waits for the release's objects on uninstall by default, and
        # Helm 4 deprecates --wait=false (its wait is a strategy now) while Helm 3 knows no strategy.
        for namespace, release in reversed(self.installed):
            self.cluster.helm("uninstall", release, "-n", namespace, check=False)
