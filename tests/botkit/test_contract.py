"""docs/bot-contract.md holds: the chart, the helpers and tgbot-dev agree, and its migrated bot runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tgbot_aiogram
import tgbot_ptb
from tgbot_dev.stack import WEBHOOK_PATH

from .conftest import BIN

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "bot-contract.md"
DEPLOYMENT = REPO / "charts" / "telegram-bot" / "templates" / "deployment.yaml"


def test_the_chart_helpers_and_tgbot_dev_agree_on_socket_and_path():
    template = DEPLOYMENT.read_text()
    socket_dir = re.search(r'\$socketDir := "([^"]+)"', template)
    assert socket_dir is not None
    assert re.search(r"- name: BOT_SOCKET\s+value: \{\{ \$socketDir \}\}/bot\.sock", template)
    chart_socket = f"{socket_dir.group(1)}/bot.sock"
    upstream = re.search(r"--upstream=http://bot(/\S*)", template)
    assert upstream is not None
    assert tgbot_aiogram.DEFAULT_SOCKET == tgbot_ptb.DEFAULT_SOCKET == chart_socket
    assert tgbot_aiogram.DEFAULT_WEBHOOK_PATH == tgbot_ptb.DEFAULT_WEBHOOK_PATH == WEBHOOK_PATH
    assert upstream.group(1) == WEBHOOK_PATH
    assert f"`{chart_socket}`" in DOC.read_text()


def after_block() -> str:
    text = DOC.read_text()
    marker = text.index("<!-- after:")
    match = re.search(r"```python\n(.*?)```", text[marker:], re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
def test_the_migrated_aiogram_bot_of_the_doc_runs(tmp_path: Path):
    bot = tmp_path / "bot.py"
    bot.write_text(after_block())
    result = subprocess.run(
        [str(BIN / "tgbot-dev"), "run", "--message", "/start", "--message", "echo me", "--expect-reply",
         "--timeout", "20", "--", sys.executable, str(bot)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"bot: Hello, (<b>)?Developer(</b>)?!", result.stdout)
    assert "bot: echo me" in result.stdout
