"""The README stays true: its flag tables cover every flag the programs have, its links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()


def flags_of(script: str) -> set[str]:
    """The long flags ``SCRIPT --help`` lists (``--no-x`` forms folded into ``--x``)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", result.stdout)) - {"--help"}
    return {flag.replace("--no-", "--") for flag in found}


@pytest.mark.parametrize("script", ["tgbot-operator", "tgbot-sidecar"])
def test_the_readme_documents_every_flag(script: str) -> None:
    documented = {flag.replace("--no-", "--") for flag in re.findall(r"`(--[a-z][a-z0-9-]+)", README)}
    documented |= {
        flag.replace("--no-", "--") for flag in re.findall(r"(?<=[`, ])(--[a-z][a-z0-9-]+)", README)
    }
    missing = sorted(flags_of(script) - documented)
    assert not missing, f"README.md lacks {script}'s flags {missing}"


def test_every_relative_link_in_the_readme_resolves() -> None:
    links = re.findall(r"\]\(((?!https?:|#)[^)#]+)", README)
    assert links, "no links found: the pattern is broken"
    broken = [link for link in links if not (REPO_ROOT / link).exists()]
    assert not broken, f"README.md links to missing files: {broken}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_readme_bot_answers_under_tgbot_dev(tmp_path: Path) -> None:
    """The README's five-line bot, run with the README's own tgbot-dev command, answers."""
    (snippet,) = re.findall(r"```python\n(# bot\.py.*?)```", README, flags=re.S)
    (tmp_path / "bot.py").write_text(snippet)
    command = re.search(r"^(tgbot-dev run --message .*? -- python bot\.py)", README, flags=re.M)
    assert command, "the README shows no batch tgbot-dev command"
    args = command.group(1).split()
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / args[0]), *args[1:-2], str(bin_dir / "python"), "bot.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "bot: hi" in result.stdout
