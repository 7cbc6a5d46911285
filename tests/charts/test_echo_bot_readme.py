"""examples/echo-bot/README.md's one-command local run works as written: the example bot, the
emulator and the real sidecar (tgbot-dev), the answers printed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.charts.chartlib import REPO_ROOT

README = REPO_ROOT / "examples" / "echo-bot" / "README.md"


@pytest.mark.slow  # runs the example bot and tgbot-dev as real processes
def test_the_readme_run_command_gets_answers() -> None:
    (line,) = [line for line in README.read_text().splitlines() if line.startswith("tgbot-dev run --message")]
    argv = shlex.split(line, comments=True)
    tgbot_dev = Path(sys.executable).with_name("tgbot-dev")
    argv[0] = str(tgbot_dev) if tgbot_dev.exists() else str(shutil.which("tgbot-dev"))
    argv[argv.index("python")] = sys.executable
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^bot: hello$", result.stdout, flags=re.MULTILINE), result.stdout
    assert "bot: [document]" in result.stdout, result.stdout
