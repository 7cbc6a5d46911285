"""What both demos (``tgbot-demo`` on host processes, ``tgbot-demo --pods`` on the pod cluster) tell
and how they say it: the demo bot, the commands it declares, the step/ok lines, the error type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BOT_TOKEN = "123456789:AAdemo-Token_for_the_local_emulator0"  # noqa: S105 - the emulator's demo bot
BOT_ID = 123456789
BOT_NAME = "echo"
BOT_USERNAME = f"{BOT_NAME}_demo_bot"
HELLO = "Hello from the demo!"

#: spec.profile of the demo's TelegramBot: the commands Telegram shows in the bot's menu.
PROFILE: dict[str, Any] = {
    "commands": [
        {
            "scope": {"type": "default"},
            "commands": [
                {"command": "start", "description": "Start the bot"},
                {"command": "help", "description": "Show help"},
            ],
        }
    ]
}
DECLARED_COMMANDS = [(c["command"], c["description"]) for c in PROFILE["commands"][0]["commands"]]


class DemoError(RuntimeError):
    """A step did not do what it claims."""


def say(text: str) -> None:
    print(text, flush=True)


def step(number: int, total: int, text: str) -> None:
    say(f"\n==> [{number}/{total}] {text}")


def ok(text: str) -> None:
    say(f"    ok: {text}")


def show_commands(commands: Sequence[dict[str, Any]]) -> None:
    """getMyCommands' answer as Telegram's menu lists it; fails unless it is what was declared."""
    say("    getMyCommands (the emulator answers as Telegram would answer the bot):")
    for command in commands:
        say(f"      /{command.get('command')} - {command.get('description')}")
    got = [(c.get("command"), c.get("description")) for c in commands]
    if got != DECLARED_COMMANDS:
        raise DemoError(f"getMyCommands answered {got}, declared were {DECLARED_COMMANDS}")
    ok(" and ".join(f"/{name}" for name, _ in DECLARED_COMMANDS) + " appear as declared in spec.profile")


def condition(bot: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in bot.get("status", {}).get("conditions", []):
        if entry.get("type") == kind:
            return dict(entry)
    return {}
