"""``tgbot-dev run``: the real emulator, sidecar and bot processes, batch and interactive."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tgbot_dev.cli import RunCommand, main, split_arguments

from .conftest import BIN, BOTS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
AIOGRAM_BOT = REPO / "examples" / "aiogram-bot" / "aiogram_bot.py"
PTB_BOT = REPO / "examples" / "ptb-bot" / "ptb_bot.py"
TGBOT_DEV = str(BIN / "tgbot-dev")
# What a Telegram token looks like: tgbot-dev generates one per run, the bot must never print it.
# The emulator may apply parse_mode=HTML (then the text has no tags) or keep the text as sent.
HELLO = re.compile(r"bot: Hello, (<b>)?Developer(</b>)?!")
TOKEN_SHAPE = re.compile(r"\d{9,}:[A-Za-z0-9_-]{35}")


def run_dev(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TGBOT_DEV, "run", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (reaped by whoever waits for it).
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def test_messages_keep_their_text_verbatim():
    options, messages, command = split_arguments(
        ["--message", 'a, "b" [c]', "--timeout", "3", "--message=1", "--", "python", "-c", "print([1, 2])"]
    )
    assert messages == ['a, "b" [c]', "1"]
    assert options == ["--timeout", "3"]
    assert command == ["python", "-c", "print([1, 2])"]


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        ([], 2, "usage: tgbot-dev run"),
        (["--help"], 0, "usage: tgbot-dev run"),
        (["serve"], 2, "unknown command 'serve'"),
        (["run"], 2, "give the bot's command after --"),
        (["run", "--message"], 2, "--message needs a value"),
        (["run", "--timeout", "0", "--", "true"], 2, "--timeout: Input should be greater than 0"),
        (
            ["run", "--startup-timeout", "soon", "--", "true"],
            2,
            "--startup-timeout: not a duration",
        ),
    ],
)
def test_bad_command_lines_get_one_clear_line(
    argv: list[str], code: int, says: str, capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == code
    captured = capsys.readouterr()
    assert says in captured.out + captured.err
    assert "Traceback" not in captured.err


def test_options_come_from_the_environment_too(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TGBOT_DEV_TIMEOUT", "5")
    monkeypatch.setenv("TGBOT_DEV_ALLOWED_UPDATES", '["message", "callback_query"]')
    options = RunCommand(command=["python", "bot.py"])
    assert options.timeout == 5
    assert options.allowed_updates == ["message", "callback_query"]


def test_aiogram_docs_bot_answers_each_message():
    result = run_dev(
        "--message", "/start", "--message", 'hi, "you" [1]', "--expect-reply", "--timeout", "20",
        "--", sys.executable, str(AIOGRAM_BOT),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert HELLO.search(result.stdout)
    assert 'bot: hi, "you" [1]' in result.stdout
    assert "Update id=1 is handled" in result.stderr  # the bot's own log, shown in batch mode
    assert not TOKEN_SHAPE.search(result.stdout + result.stderr)


def test_ptb_bot_answers_each_message():
    result = run_dev(
        "--message", "/start", "--message", "hello ptb", "--expect-reply", "--timeout", "20",
        "--", sys.executable, str(PTB_BOT),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bot: Hello, Developer!" in result.stdout
    assert "bot: hello ptb" in result.stdout
    assert "Application started" in result.stderr
    assert not TOKEN_SHAPE.search(result.stdout + result.stderr)


def test_expect_reply_fails_when_the_bot_stays_silent():
    result = run_dev(
        "--message", "anyone?", "--expect-reply", "--timeout", "2",
        "--", sys.executable, str(BOTS / "silent_aiogram.py"),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no answer within 2 s" in result.stdout


def test_a_bot_on_the_wrong_path_is_reported_with_the_sidecars_reason():
    result = run_dev(
        "--message", "hi", "--timeout", "4", "--", sys.executable, str(BOTS / "wrong_path_aiogram.py")
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not delivered within 4 s: Wrong response from the webhook: 502" in result.stdout
    assert "  sidecar: " in result.stdout


def test_a_bot_that_never_serves_its_socket_is_reported():
    result = run_dev(
        "--startup-timeout", "3", "--message", "hi", "--", sys.executable, "-c", "import time; time.sleep(60)"
    )
    assert result.returncode == 1
    assert "does not serve $BOT_SOCKET" in result.stderr


def descendants_of(pid: int) -> set[int]:
    found = children_of(pid)
    for child in list(found):
        with contextlib.suppress(FileNotFoundError):
            found |= descendants_of(child)
    return found


def test_sigterm_stops_everything_it_started():
    # The "bot" is a shell that waits for its own child: stopping the shell alone would leave it.
    bot = f"{sys.executable} -c 'import time; time.sleep(600)'; echo never"
    process = subprocess.Popen(
        [TGBOT_DEV, "run", "--message", "hi", "--", "sh", "-c", bot],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(descendants_of(process.pid)) < 4:  # emulator, sidecar, the shell and its child
            assert time.monotonic() < deadline, "tgbot-dev did not start its processes"
            time.sleep(0.1)
        started = descendants_of(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 128 + signal.SIGTERM
        assert not [pid for pid in started if alive(pid)]
        assert "never" not in process.communicate()[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class Terminal:
    """tgbot-dev on a pseudo-terminal, as a person would run it."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        self.screen = ""

    async def expect(self, text: str, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        readable = asyncio.Event()
        loop.add_reader(self.master, readable.set)
        try:
            while text not in self.screen:
                remaining = deadline - loop.time()
                assert remaining > 0, f"{text!r} never appeared:\n{self.screen}"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(readable.wait(), remaining)
                readable.clear()
                try:
                    chunk = os.read(self.master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the other side is closed
                    chunk = b""
                if not chunk:
                    assert text in self.screen, f"{text!r} never appeared:\n{self.screen}"
                self.screen += chunk.decode(errors="replace").replace("\r\n", "\n")
        finally:
            loop.remove_reader(self.master)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


async def test_interactive_chat_with_buttons_and_edits():
    terminal = Terminal([TGBOT_DEV, "run", "--", sys.executable, str(AIOGRAM_BOT)])
    try:
        await terminal.expect("Chatting with @dev_bot")
        terminal.type("/start\n")
        await terminal.expect("bot: Hello, ")
        await terminal.expect("!")
        assert HELLO.search(terminal.screen)
        terminal.type("/menu\n")
        await terminal.expect("[1] Tea  [2] Coffee")
        terminal.type("2\n")  # presses "Coffee": the bot edits its message and answers the query
        await terminal.expect("One coffee, coming up.")
        await terminal.expect("bot (notice): You chose coffee")
        assert re.search(r"bot \(edited #\d+\): One coffee, coming up\.", terminal.screen)
        terminal.type("3\n")  # no such button any more (the edit removed the keyboard): sent as text
        await terminal.expect("bot: 3")
        terminal.type("\x04")  # Ctrl-D: end of input
        assert await asyncio.to_thread(terminal.process.wait, 60) == 0
        assert not TOKEN_SHAPE.search(terminal.screen)
    finally:
        terminal.close()
