"""Each program is its own distribution: a plain install of it, in a fresh venv, runs its console scripts.

The checkout's own distribution (the repository root) installs all of them. Dependencies come from the
package index, as for a user; pip's cache keeps repeated runs quick.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: folder -> (console scripts it installs, modules it must NOT pull in)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "operator": (("tgbot-operator",), ("aiogram", "telegram", "orjson", "httptools", "tgbot_sidecar")),
    "sidecar": (("tgbot-sidecar",), ("kopf", "kubernetes", "cryptography", "aiogram", "tgbot_operator")),
    "emulator": (("tgbot-emulator", "tgbot-dev"), ("kopf", "kubernetes", "aiogram", "tgbot_operator")),
    "localdev": (("tgbot-demo", "tgbot-operator", "tgbot-sidecar", "tgbot-emulator"), ("aiogram",)),
}
#: library distributions (no console script): folder -> (module, modules it must NOT pull in)
LIBRARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "integrations/aiogram": ("tgbot_aiogram", ("telegram", "kopf", "tgbot_sidecar", "orjson")),
    "integrations/ptb": ("tgbot_ptb", ("aiogram", "kopf", "tgbot_sidecar", "orjson")),
}


def fresh_venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin"


def pip_install(bin_dir: Path, *args: str) -> None:
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


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
def test_a_plain_install_of_each_distribution_runs_its_scripts(folder: str, tmp_path: Path) -> None:
    scripts, foreign = DISTRIBUTIONS[folder]
    bin_dir = fresh_venv(tmp_path / "venv")
    pip_install(bin_dir, str(REPO_ROOT / folder))
    for script in scripts:
        runs(bin_dir, script)
    pulled = [module for module in foreign if importable(bin_dir, module)]
    assert not pulled, f"{folder} pulls in {pulled}, which it does not need"


@pytest.mark.parametrize("folder", sorted(LIBRARIES))
def test_each_bot_helper_imports_with_its_framework_alone(folder: str, tmp_path: Path) -> None:
    module, foreign = LIBRARIES[folder]
    bin_dir = fresh_venv(tmp_path / "venv")
    pip_install(bin_dir, str(REPO_ROOT / folder))
    assert importable(bin_dir, module)
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pulled = [name for name in foreign if importable(bin_dir, name)]
    assert not pulled, f"{folder} pulls in {pulled}, which it does not need"


def test_installing_the_checkout_installs_every_program(tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    pip_install(bin_dir, str(REPO_ROOT))
    for script in sorted({s for scripts, _ in DISTRIBUTIONS.values() for s in scripts}):
        runs(bin_dir, script)


def test_the_operator_alone_is_not_held_back_by_the_dev_pins(tmp_path: Path) -> None:
    """The dev environment pins pydantic below 2.14 for aiogram; the operator's own install does not."""
    bin_dir = fresh_venv(tmp_path / "venv")
    pip_install(bin_dir, str(REPO_ROOT / "operator"), "pydantic>=2.14", "kubernetes>=37")
    runs(bin_dir, "tgbot-operator")
