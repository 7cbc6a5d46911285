"""``tgbot-dev run [--message TEXT]... [--expect-reply] [--timeout DURATION] -- COMMAND...``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, CliSuppress, SettingsConfigDict

import tgbot_kit
from tgbot_kit import Duration

from .session import Plan, run

USAGE = """usage: tgbot-dev run [--message TEXT]... [--expect-reply] [--timeout DURATION] -- COMMAND...

Runs your bot (COMMAND) locally behind the real tgbot-sidecar and the Bot API emulator, with
BOT_TOKEN, BOT_SOCKET, BOT_WEBHOOK_PATH and BOT_API_SERVER set, and registers its webhook as
the operator would. Without --message: an interactive chat. `tgbot-dev run --help` for all options.
"""


class RunCommand(BaseSettings):
    """Run your bot behind the sidecar and the emulator: `tgbot-dev run [OPTIONS] -- COMMAND...`.

    Without --message it opens a chat in the terminal: type a message or a /command, type a
    button's number to press it, Ctrl-D or Ctrl-C to end. With --message it sends each message
    in turn, prints the bot's answers and exits (0 when every message was delivered and, with
    --expect-reply, answered).
    """

    model_config = SettingsConfigDict(env_prefix="TGBOT_DEV_", extra="ignore")

    message: list[str] = Field(
        default_factory=list, description="send this message and print the answer (repeatable)"
    )
    expect_reply: bool = Field(default=False, description="exit 1 unless every message got an answer")
    timeout: Duration = Field(default=30.0, gt=0, description="how long to wait for each delivery and answer")
    startup_timeout: Duration = Field(
        default=30.0, gt=0, description="how long the bot may take to serve its socket"
    )
    allowed_updates: list[str] = Field(
        default_factory=list, description="update types to register (empty: Telegram's default)"
    )
    drain_timeout: Duration = Field(default=10.0, gt=0, description="the sidecar's --drain-timeout on exit")
    command: CliSuppress[list[str]] = Field(default_factory=list)

    def cli_cmd(self) -> None:
        if not self.command:
            print("tgbot-dev run: give the bot's command after --, e.g. -- python bot.py", file=sys.stderr)
            raise SystemExit(2)
        plan = Plan(
            command=self.command,
            messages=self.message,
            expect_reply=self.expect_reply,
            timeout=self.timeout,
            startup_timeout=self.startup_timeout,
            allowed_updates=self.allowed_updates,
            drain_timeout=self.drain_timeout,
        )
        raise SystemExit(asyncio.run(run(plan)))


def split_arguments(args: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(options, messages, command).

    The command (after ``--``) and the messages are taken verbatim: pydantic-settings reads
    list values with its own syntax (commas split, brackets and quotes are parsed), and a chat
    message or an argv is free text.
    """
    args = list(args)
    command: list[str] = []
    if "--" in args:
        at = args.index("--")
        args, command = args[:at], args[at + 1 :]
    options: list[str] = []
    messages: list[str] = []
    items = iter(args)
    for item in items:
        if item == "--message":
            value = next(items, None)
            if value is None:
                print("tgbot-dev run: --message needs a value", file=sys.stderr)
                raise SystemExit(2)
            messages.append(value)
        elif item.startswith("--message="):
            messages.append(item.split("=", 1)[1])
        else:
            options.append(item)
    return options, messages, command


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        raise SystemExit(0 if args else 2)
    if args[0] != "run":
        print(f"tgbot-dev: unknown command {args[0]!r}\n{USAGE}", end="", file=sys.stderr)
        raise SystemExit(2)
    options, messages, command = split_arguments(args[1:])
    # Init data wins over the CLI and the environment (TGBOT_DEV_MESSAGE still works without flags).
    init: dict[str, Any] = {"command": command}
    if messages:
        init["message"] = messages
    tgbot_kit.parse_or_exit(RunCommand, options, prog="tgbot-dev run", **init)
