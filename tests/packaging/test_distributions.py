"""Each program is its own distribution: a plain install of it, in a fresh venv, runs its console scripts.

The checkout's own distribution (the repository root) installs all of them. Dependencies come from the
package index, as for a user; pip's cache keeps repeated runs quick. The build backend (hatchling) is
fetched once per run into a wheel folder every venv installs it from, and pip builds our distributions
with it in place (``--no-build-isolation``): a local path dependency (every program needs tgbot-kit)
is built once per install instead of once per install in a fresh build environment of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: folder -> (console scripts it installs, modules it must NOT pull in)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "kit": ((), ("kopf", "aiohttp", "tgbot_operator", "tgbot_sidecar", "tgbot_emulator")),
    "operator": (
        ("tgbot-operator",),
        ("kubernetes", "aiogram", "telegram", "orjson", "httptools", "tgbot_sidecar"),
    ),
    "sidecar": (("tgbot-sidecar",), ("kopf", "kubernetes", "cryptography", "aiogram", "tgbot_operator")),
    "emulator": (("tgbot-emulator", "tgbot-dev"), ("kopf", "kubernetes", "aiogram", "tgbot_operator")),
    "localdev": (
        ("tgbot-demo", "tgbot-operator", "tgbot-sidecar", "tgbot-emulator"),
        ("aiogram", "kubernetes"),
    ),
}
#: library distributions (no console script): folder -> (module, modules it must NOT pull in)
LIBRARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "integrations/aiogram": ("tgbot_aiogram", ("telegram", "kopf", "tgbot_sidecar", "orjson")),
    "integrations/ptb": ("tgbot_ptb", ("aiogram", "kopf", "tgbot_sidecar", "orjson")),
}


def fresh_venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin"


def pip(bin_dir: Path, *args: str) -> str:
    """pip's error, or "" when it succeeded."""
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "-q", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    return "" if result.returncode == 0 else result.stderr[-3000:]


def build_backend(root: Path) -> Path:
    """hatchling (the backend of every pyproject.toml here) as wheels in a folder: fetched once."""
    wheels = root / "build-backend"
    error = pip(Path(sys.executable).parent, "wheel", "--wheel-dir", str(wheels), "hatchling")
    assert not error, error
    return wheels


def install_alone(root: Path, folder: str, backend: Path) -> tuple[Path, str]:
    """A fresh venv with a plain ``pip install <folder>``: (its bin folder, pip's error or "")."""
    bin_dir = fresh_venv(root / folder.replace("/", "-").strip(".") / "venv")
    error = pip(bin_dir, "install", "--no-index", "--find-links", str(backend), "hatchling")
    return bin_dir, error or pip(bin_dir, "install", "--no-build-isolation", str(REPO_ROOT / folder))


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every distribution (and the checkout) installed alone, side by side: pip mostly waits on the index."""
    root = tmp_path_factory.mktemp("installs")
    backend = build_backend(root)
    folders = [*DISTRIBUTIONS, *LIBRARIES, "."]
    with ThreadPoolExecutor(max_workers=4) as pool:
        installed = pool.map(lambda folder: install_alone(root, folder, backend), folders)
        done = dict(zip(folders, installed, strict=True))
    failed = {folder: error for folder, (_, error) in done.items() if error}
    assert not failed, f"plain installs failed: {failed}"
    return {folder: bin_dir for folder, (bin_dir, _) in done.items()}


def runs(bin_dir: Path, script: str) -> None:
    result = subprocess.run(
        [str(bin_dir / script), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{script} --help failed:\n{result.stderr[-3000:]}"
    assert f"usage: {script}" in result.stdout


def importable(bin_dir: Path, module: str) -> bool:
    probe = f"import importlib.util as u, sys; sys.exit(0 if u.find_spec({module!r}) else 1)"
    return subprocess.run([str(bin_dir / "python"), "-c", probe], check=False).returncode == 0


@pytest.mark.parametrize("folder", sorted(DISTRIBUTIONS))
def test_a_plain_install_of_each_distribution_runs_its_scripts(
    folder: str, installs: dict[str, Path]
) -> None:
    scripts, foreign = DISTRIBUTIONS[folder]
    for script in scripts:
        runs(installs[folder], script)
    pulled = [module for module in foreign if importable(installs[folder], module)]
    assert not pulled, f"{folder} pulls in {pulled}, which it does not need"


@pytest.mark.parametrize("folder", sorted(LIBRARIES))
def test_each_bot_helper_imports_with_its_framework_alone(folder: str, installs: dict[str, Path]) -> None:
    module, foreign = LIBRARIES[folder]
    result = subprocess.run(
        [str(installs[folder] / "python"), "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pulled = [name for name in foreign if importable(installs[folder], name)]
    assert not pulled, f"{folder} pulls in {pulled}, which it does not need"


def test_installing_the_checkout_installs_every_program(installs: dict[str, Path]) -> None:
    for script in sorted({s for scripts, _ in DISTRIBUTIONS.values() for s in scripts}):
        runs(installs["."], script)
    for module, _ in LIBRARIES.values():
        assert importable(installs["."], module), module


def test_the_operator_alone_is_not_held_back_by_the_dev_pins(installs: dict[str, Path]) -> None:
    """The dev environment pins pydantic below 2.14 for aiogram; the operator's own install does not."""
    probe = "from importlib.metadata import version; print(version('pydantic'))"
    found = subprocess.run(
        [str(installs["operator"] / "python"), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    major, minor = (int(part) for part in found.split(".")[:2])
    assert (major, minor) >= (2, 14), f"the operator's own install got pydantic {found}"


EXEC_PLUGIN = """#!/bin/sh
echo '{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
       "status": {"token": "from-the-plugin"}}'
"""


def exec_plugin_kubeconfig(folder: Path) -> Path:
    """A kubeconfig whose user authenticates through an exec plugin (as EKS's and GKE's do)."""
    plugin = folder / "credential-plugin"
    plugin.write_text(EXEC_PLUGIN)
    plugin.chmod(0o755)
    path = folder / "kubeconfig"
    api = "client.authentication.k8s.io/v1"
    exec_ = {"apiVersion": api, "command": str(plugin), "interactiveMode": "Never"}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "eks",
        "contexts": [{"name": "eks", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"exec": exec_}}],
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_an_exec_plugin_kubeconfig_without_the_client_says_which_extra(
    installs: dict[str, Path], tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(installs["operator"] / "tgbot-operator"), "--kubeconfig", str(exec_plugin_kubeconfig(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "pip install 'tgbot-operator[kubernetes]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_kubernetes_extra_logs_in_through_an_exec_plugin(tmp_path: Path) -> None:
    backend = build_backend(tmp_path)
    bin_dir = fresh_venv(tmp_path / "venv")
    error = pip(bin_dir, "install", "--no-index", "--find-links", str(backend), "hatchling") or pip(
        bin_dir, "install", "--no-build-isolation", f"{REPO_ROOT / 'operator'}[kubernetes]"
    )
    assert not error, error
    probe = (
        "import sys; from pathlib import Path; from tgbot_operator.login import connection_info; "
        "info = connection_info(Path(sys.argv[1])); "
        "print(info.server, info.as_http_headers() == {'Authorization': 'Bearer from-the-plugin'})"
    )
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", probe, str(exec_plugin_kubeconfig(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "https://127.0.0.1:1 True"  # the plugin's token, never printed
