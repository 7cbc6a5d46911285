"""docs/bot-contract.md holds: the chart, the helpers and tgbot-dev agree, and its migrated bot runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tgbot_aiogram
import tgbot_ptb
from tests.charts.chartlib import BOT_CHART, BOT_MINIMAL_VALUES, Helm, container, find_helm, one
from tgbot_dev.stack import WEBHOOK_PATH

from .conftest import BIN

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "bot-contract.md"


def test_the_chart_helpers_and_tgbot_dev_agree_on_socket_and_path(tmp_path: Path):
    """What the chart renders (with the real helm) is what the helpers and tgbot-dev default to."""
    binary = find_helm("helm")
    assert binary is not None, "helm is built with the control plane (hack/build-controlplane.sh)"
    deployment = one(Helm(binary, tmp_path).render(BOT_CHART, BOT_MINIMAL_VALUES), "Deployment")
    env = {e["name"]: e.get("value") for e in container(deployment, "bot").get("env", [])}
    args = container(deployment, "sidecar")["args"]
    upstream = next(a.split("=", 1)[1] for a in args if a.startswith("--upstream="))
    upstream_socket = next(a.split("=", 1)[1] for a in args if a.startswith("--upstream-unix-socket="))
    chart_socket = env["BOT_SOCKET"]
    assert chart_socket == upstream_socket
    assert tgbot_aiogram.DEFAULT_SOCKET == tgbot_ptb.DEFAULT_SOCKET == chart_socket
    assert tgbot_aiogram.DEFAULT_WEBHOOK_PATH == tgbot_ptb.DEFAULT_WEBHOOK_PATH == WEBHOOK_PATH
    assert env["BOT_WEBHOOK_PATH"] == WEBHOOK_PATH
    assert upstream == f"http://bot{WEBHOOK_PATH}"
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
