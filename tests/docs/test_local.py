"""The docs' local commands, pasted: each page's bots and tgbot-dev lines, and the commands in the prose.

A ``tgbot-dev run --message ...`` line runs as written and must exit 0 (with ``--expect-reply`` also
print an answer); a ``tgbot-dev run -- ...`` line is the chat: a message is typed, the bot's answer
must appear, then Ctrl-D ends it with exit 0. ``pip install`` lines are the install runner's (this
checkout's .venv has every distribution; test_fresh_install.py runs the README's in a new venv).
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.console import run_script
from tests.docs.fences import INLINE, REPO_ROOT, Block, all_blocks, blocks

BIN = Path(sys.executable).parent
CHAT_MESSAGE = "hello from the docs"
#: The commands stay as written; on a loaded test machine a bot takes longer to start and answer
#: than tgbot-dev's defaults (30 s) allow, so its documented TGBOT_DEV_* variables raise them.
PATIENT = {**os.environ, "TGBOT_DEV_STARTUP_TIMEOUT": "150s", "TGBOT_DEV_TIMEOUT": "90s"}


def tgbot_dev_commands() -> list[tuple[Block, str]]:
    return [
        (block, command)
        for block in all_blocks("tgbot-dev")
        for command in block.commands()
        if not command.startswith("pip ")
    ]


def inline_tgbot_dev() -> list[str]:
    return [command for command, how in INLINE.items() if how == ("run", "tgbot-dev")]


def argv_of(command: str, bin_dir: Path) -> list[str]:
    argv = shlex.split(command, comments=True)
    assert argv[:2] == ["tgbot-dev", "run"], command
    argv[0] = str(bin_dir / "tgbot-dev")
    argv[argv.index("python")] = str(bin_dir / "python")
    return argv


def workdir_for(page: Path, tmp_path: Path) -> Path:
    """Where the page's commands run: beside the bots it shows, else the repository root."""
    bots = [b for b in blocks(page) if b.runner == "bot"]
    for bot in bots:
        assert bot.argument is not None
        (tmp_path / bot.argument).write_text(bot.text)
    return tmp_path if bots else REPO_ROOT


def run_batch(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        argv, cwd=cwd, env=env or PATIENT, capture_output=True, text=True, timeout=360, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sent = argv[argv.index("--message") + 1]
    assert f"you: {sent}" in result.stdout, result.stdout
    if "--expect-reply" in argv:
        assert re.search(r"^bot: ", result.stdout, re.MULTILINE), result.stdout


def run_chat(argv: list[str], cwd: Path) -> None:
    """Type one message, wait for the bot's answer, then Ctrl-D."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=PATIENT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        assert process.stdin is not None
        process.stdin.write(CHAT_MESSAGE + "\n")
        process.stdin.flush()
        while True:
            line = lines.get(timeout=300)
            assert line is not None, "tgbot-dev ended before the bot answered:\n" + "".join(seen)
            seen.append(line)
            if line.startswith("bot: "):
                break
        process.stdin.close()
        assert process.wait(timeout=60) == 0, "".join(seen)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("block", "command"),
    [*tgbot_dev_commands(), *((None, c) for c in inline_tgbot_dev())],
    ids=lambda x: str(x) if isinstance(x, Block) else (x if isinstance(x, str) else "prose"),
)
def test_the_tgbot_dev_command_works_when_pasted(block: Block | None, command: str, tmp_path: Path) -> None:
    cwd = workdir_for(block.page, tmp_path) if block else REPO_ROOT
    argv = argv_of(command, BIN)
    if "--message" in argv:
        run_batch(argv, cwd)
    else:
        run_chat(argv, cwd)


@pytest.mark.parametrize("command", ["tgbot-dev run --help", "tgbot-sidecar --help"])
def test_the_help_commands_run(command: str) -> None:
    assert INLINE[command] == ("run", "local")
    program, *args = shlex.split(command)
    result = run_script(program, *args)  # the script's entry point; tests/packaging runs the real script
    assert result.code == 0, result.stderr
    assert "--" in result.stdout


# Real programs, started as the docs say (``slow``: the unit layer runs no programs; the full suite does).
@pytest.mark.slow
def test_python_dash_m_tgbot_emulator_is_tgbot_emulator() -> None:
    assert INLINE["python -m tgbot_emulator"] == ("run", "local")
    module = subprocess.run(
        [sys.executable, "-m", "tgbot_emulator", "--help"], capture_output=True, text=True, timeout=60
    )
    script = subprocess.run(
        [str(BIN / "tgbot-emulator"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert module.returncode == script.returncode == 0, module.stderr + script.stderr
    flags = re.compile(r"--[a-z][a-z-]+")
    assert set(flags.findall(module.stdout)) == set(flags.findall(script.stdout)) != set()


@pytest.mark.slow
def test_the_readme_emulator_command_listens_and_stops_cleanly() -> None:
    (command,) = [
        c for c, how in INLINE.items() if how == ("run", "emulator") and c.startswith("tgbot-emulator --")
    ]
    argv = shlex.split(command.replace("127.0.0.1:8081", "127.0.0.1:0"))  # any free port
    process = subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        line = process.stdout.readline()
        # docs/emulator.md: exactly one line, "tgbot-emulator listening on http://HOST:PORT"
        (shown,) = [c for c, how in INLINE.items() if how == ("run", "emulator") and "listening" in c]
        pattern = re.escape(shown).replace("HOST", r"127\.0\.0\.1").replace("PORT", r"\d+")
        assert re.fullmatch(pattern, line.strip()), line + (process.stderr.read() if process.poll() else "")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
