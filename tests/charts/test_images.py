"""The Dockerfiles and the charts agree, and the images' entrypoints run from a wheel install.

No Docker engine here: the images cannot be built. What can be checked is checked: the ports
the images EXPOSE are the ports the charts use, the charts name the images' repositories, and
the wheel installed exactly as the Dockerfile installs it provides a working entrypoint.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.charts.chartlib import (
    BOT_CHART,
    BOT_MINIMAL_VALUES,
    OPERATOR_CHART,
    REPO_ROOT,
    Helm,
    container,
    one,
)


@dataclass
class Dockerfile:
    path: Path
    text: str

    @property
    def instructions(self) -> list[tuple[str, str]]:
        """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
        logical = re.sub(
            r"\\\n",
            " ",
            "\n".join(line for line in self.text.splitlines() if not line.lstrip().startswith("#")),
        )
        out = []
        for line in logical.splitlines():
            if line.strip():
                word, _, rest = line.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
        return out

    def all(self, instruction: str) -> list[str]:
        return [rest for word, rest in self.instructions if word == instruction]

    @property
    def stages(self) -> list[str]:
        return self.all("FROM")

    @property
    def exposed(self) -> set[int]:
        return {int(port.split("/")[0]) for rest in self.all("EXPOSE") for port in rest.split()}

    @property
    def entrypoint(self) -> list[str]:
        (rest,) = self.all("ENTRYPOINT")
        value: list[str] = json.loads(rest)
        return value

    @property
    def extra(self) -> str:
        """The extra installed: ARG EXTRA=..., used as [${EXTRA}] in the pip install."""
        (value,) = [rest.split("=", 1)[1] for rest in self.all("ARG") if rest.startswith("EXTRA=")]
        return value

    @property
    def title(self) -> str:
        match = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', self.text)
        assert match, f"{self.path}: no org.opencontainers.image.title label"
        return match.group(1)


def dockerfile(component: str) -> Dockerfile:
    path = REPO_ROOT / component / "Dockerfile"
    return Dockerfile(path, path.read_text())


@pytest.mark.parametrize(
    ("component", "extra", "command"),
    [("operator", "operator", "tgbot-operator"), ("sidecar", "sidecar", "tgbot-sidecar")],
)
def test_dockerfile_shape(component: str, extra: str, command: str) -> None:
    image = dockerfile(component)
    assert len(image.stages) == 2, "multi-stage: a builder and the runtime"
    builder, runtime = image.stages
    assert builder.endswith(" AS builder")
    assert runtime == builder.removesuffix(" AS builder"), (
        "builder and runtime share the base (the venv's python)"
    )
    # Debian slim with Debian's python3: the pod tests build that base from Debian's packages.
    (base_arg,) = [rest for rest in image.all("ARG") if rest.startswith("BASE_IMAGE=")]
    assert base_arg == "BASE_IMAGE=debian:bookworm-slim", base_arg
    assert all("python3" in run for run in (image.all("RUN")[0], image.all("RUN")[-1])), (
        "both stages install Debian's python3 (the venv points at /usr/bin/python3)"
    )
    assert image.extra == extra
    install = " ".join(image.all("RUN")[1:2])
    assert "pip wheel --no-deps" in install
    assert "[${EXTRA}]" in install
    assert image.all("COPY")[-1] == "--from=builder /opt/venv /opt/venv", "the runtime gets only the venv"
    assert image.all("USER") == ["65532:65532"]
    assert image.entrypoint == [f"/opt/venv/bin/{command}"]
    assert image.title == command


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for component in ("operator", "sidecar"):
        for rest in dockerfile(component).all("COPY"):
            if not rest.startswith("--from"):
                copied.update(p.rstrip("/") for p in shlex.split(rest)[:-1])
    assert copied <= allowed, f"COPY sources not in the build context: {copied - allowed}"


def test_charts_use_the_images_and_their_exposed_ports(helm: Helm) -> None:
    operator_image = dockerfile("operator")
    sidecar_image = dockerfile("sidecar")

    operator = container(one(helm.render(OPERATOR_CHART), "Deployment"), "operator")
    # A plain local name (no registry that would not exist for the user): what `docker build -t` made.
    assert operator["image"] == f"{operator_image.title}:0.1.0"
    assert {p["containerPort"] for p in operator["ports"]} == operator_image.exposed
    assert "command" not in operator, "the chart relies on the image's ENTRYPOINT"

    sidecar = container(one(helm.render(BOT_CHART, BOT_MINIMAL_VALUES), "Deployment"), "sidecar")
    assert sidecar["image"] == f"{sidecar_image.title}:0.1.0"
    assert {p["containerPort"] for p in sidecar["ports"]} == sidecar_image.exposed
    assert "command" not in sidecar


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built the way the Dockerfiles build it (pip wheel --no-deps .)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(REPO_ROOT),
        ],
        check=True,
        timeout=600,
    )
    (built,) = out.glob("telegram_bot_operator-*.whl")
    return built


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("component", ["operator", "sidecar"])
def test_entrypoint_runs_from_a_fresh_venv(wheel: Path, tmp_path: Path, component: str) -> None:
    image = dockerfile(component)
    target = tmp_path / "opt-venv"
    venv.create(target, with_pip=True)
    subprocess.run(
        [str(target / "bin" / "pip"), "install", "--quiet", f"{wheel}[{image.extra}]"],
        check=True,
        timeout=800,
    )
    # The ENTRYPOINT, relocated from /opt/venv to the test's venv.
    (entrypoint,) = image.entrypoint
    command = target / Path(entrypoint).relative_to("/opt/venv")
    result = subprocess.run(
        [str(command), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: {command.name}" in result.stdout
    # Only the extra's dependencies: the sidecar image carries no Kubernetes client.
    installed = subprocess.run(
        [
            str(target / "bin" / "python"),
            "-c",
            "import importlib.util as u; print(bool(u.find_spec('kopf')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert installed == ("True" if image.extra == "operator" else "False")


def test_the_bot_image_is_required_with_a_message_saying_what_to_build(any_helm: Helm) -> None:
    values = {**BOT_MINIMAL_VALUES, "bot": {"image": {"tag": "1.0.0"}}}
    result = any_helm.template(BOT_CHART, values, check=False)
    assert result.returncode != 0
    assert "bot.image.repository is required" in result.stderr, result.stderr
    assert "examples/echo-bot/Dockerfile" in result.stderr


def test_no_chart_defaults_to_a_registry(helm: Helm) -> None:
    """Every image a default install runs is a plain local name, except the public curl image."""
    images = [
        c["image"]
        for chart, values in ((OPERATOR_CHART, {}), (BOT_CHART, BOT_MINIMAL_VALUES))
        for obj in helm.render(chart, values)
        if obj["kind"] in {"Deployment", "Pod"}
        for c in (obj["spec"].get("template", {"spec": obj["spec"]})["spec"]["containers"])
    ]
    ours = [i for i in images if not i.startswith(("curlimages/", "registry.example.com/echo-bot:"))]
    assert sorted(ours) == ["tgbot-operator:0.1.0", "tgbot-sidecar:0.1.0"]
