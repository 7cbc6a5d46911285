"""The README's "your bot, locally" as a new user does it: a fresh venv, its `pip install` line, its bot,
its `tgbot-dev` batch line - nothing from this checkout's .venv."""

from __future__ import annotations

import os
import shlex
import subprocess
import venv
from pathlib import Path

import pytest

from tests.docs.fences import REPO_ROOT, all_blocks
from tests.docs.test_local import PATIENT, run_batch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_the_readme_install_and_batch_run_work_in_a_fresh_venv(tmp_path: Path) -> None:
    readme = REPO_ROOT / "README.md"
    (block,) = [b for b in all_blocks("tgbot-dev") if b.page == readme]
    (bot,) = [b for b in all_blocks("bot") if b.page == readme]
    assert bot.argument is not None
    (tmp_path / bot.argument).write_text(bot.text)
    bin_dir = tmp_path / ".venv" / "bin"
    venv.create(tmp_path / ".venv", with_pip=True)
    env = {
        **PATIENT,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(bin_dir.parent),
    }
    pip_lines = [c for c in block.commands() if c.startswith("pip install")]
    assert pip_lines, "the README's block installs nothing"
    for command in pip_lines:
        for target in shlex.split(command, comments=True)[2:]:  # the reader's checkout, beside bot.py
            (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
            if not (tmp_path / target).exists():
                (tmp_path / target).symlink_to(REPO_ROOT / target)
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, result.stderr[-3000:]
    (batch,) = [c for c in block.commands() if "--message" in c]
    argv = shlex.split(batch, comments=True)
    argv[0], argv[argv.index("python")] = str(bin_dir / "tgbot-dev"), str(bin_dir / "python")
    run_batch(argv, tmp_path, env)
