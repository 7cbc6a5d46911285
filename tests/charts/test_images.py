"""The Dockerfile and the charts agree: each image (a target of the root Dockerfile) installs only
its own distribution and tgbot-kit, and the ports the images EXPOSE are the ports the charts use.

The images themselves are built and run by the pod tests (tests/pods); a plain install of each
distribution is tested in tests/packaging.
"""

from __future__ import annotations

import json
import re
import shlex
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
    def copied(self) -> set[str]:
        """The build-context paths its COPY instructions take (not those from another stage)."""
        return {
            path.rstrip("/")
            for rest in self.all("COPY")
            if not rest.startswith("--from")
            for path in shlex.split(rest)[:-1]
        }

    @property
    def title(self) -> str:
        match = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', self.text)
        assert match, f"{self.path}: no org.opencontainers.image.title label"
        return match.group(1)

    def target(self, name: str) -> Dockerfile:
        """The instructions of stage ``name`` and of the stages it is built FROM, in build order."""
        stages: dict[str, tuple[str, list[str]]] = {}
        current = ""
        for line in self.text.splitlines():
            match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line.strip(), flags=re.I)
            if match:
                current = match.group(2) or f"<stage {len(stages)}>"
                stages[current] = (match.group(1), [])
            if current:
                stages[current][1].append(line)
        chain: list[str] = []
        stage: str | None = name
        while stage in stages:
            chain.insert(0, stage)
            stage = stages[stage][0]
        assert chain, f"{self.path}: no stage {name}"
        lines = [line for stage in chain for line in stages[stage][1]]
        return Dockerfile(self.path, "\n".join(lines))


ROOT_DOCKERFILE = Dockerfile(REPO_ROOT / "Dockerfile", (REPO_ROOT / "Dockerfile").read_text())


def dockerfile(component: str) -> Dockerfile:
    """What ``docker build --target COMPONENT .`` builds: its stage and those it is built FROM."""
    return ROOT_DOCKERFILE.target(component)


def venv_stage(component: str) -> Dockerfile:
    return ROOT_DOCKERFILE.target(f"{component}-venv")


def test_one_dockerfile_shares_the_builder_and_the_runtime() -> None:
    stages = ROOT_DOCKERFILE.stages
    assert stages[:2] == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE} AS runtime"], stages
    assert {
        "builder AS operator-venv",
        "runtime AS operator",
        "builder AS sidecar-venv",
        "runtime AS sidecar",
    } <= set(stages)
    assert not (REPO_ROOT / "operator" / "Dockerfile").exists()
    assert not (REPO_ROOT / "sidecar" / "Dockerfile").exists()


@pytest.mark.parametrize(
    ("component", "command"), [("operator", "tgbot-operator"), ("sidecar", "tgbot-sidecar")]
)
def test_dockerfile_shape(component: str, command: str) -> None:
    image = dockerfile(component)
    # Debian slim with Debian's python3: the pod tests build that base from Debian's packages.
    (base_arg,) = [rest for rest in ROOT_DOCKERFILE.all("ARG") if rest.startswith("BASE_IMAGE=")]
    assert base_arg == "BASE_IMAGE=debian:bookworm-slim", base_arg
    assert image.stages == ["${BASE_IMAGE} AS runtime", f"runtime AS {component}"]
    venv = venv_stage(component)
    assert venv.stages == ["${BASE_IMAGE} AS builder", f"builder AS {component}-venv"]
    assert "python3" in image.all("RUN")[0], "the runtime installs Debian's python3"
    assert "python3" in venv.all("RUN")[0], "so does the builder (the venv points at /usr/bin/python3)"
    # Only its own distribution and the kit (tests/packaging checks what a plain install pulls in).
    assert venv.copied == {
        "kit/pyproject.toml",
        "kit/tgbot_kit",
        f"{component}/pyproject.toml",
        f"{component}/tgbot_{component}",
    }
    install = venv.all("RUN")[-1]
    assert f"pip wheel --no-deps --wheel-dir /wheels ./{component}" in install
    assert f'pip install "$(echo /wheels/tgbot_{component}-*.whl)"' in install
    assert f"/opt/venv/bin/{command} --help" in install, "the build proves the program starts"
    assert image.all("COPY") == [f"--from={component}-venv /opt/venv /opt/venv"], (
        "the runtime gets only the venv"
    )
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
    copied = ROOT_DOCKERFILE.copied
    assert copied == allowed, f"COPY sources vs the build context: {copied ^ allowed}"


def test_build_images_builds_each_target_from_the_root_dockerfile() -> None:
    script = (REPO_ROOT / "hack" / "build-images.sh").read_text()
    for component in ("operator", "sidecar"):
        assert f'"tgbot-{component}|Dockerfile|.|{component}|' in script
    assert "--target" in script


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
