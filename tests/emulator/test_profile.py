"""The profile methods: commands per scope and language, names, descriptions, menu button, rights."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.emulator.helpers import BOT_ID, BotApi
from tgbot_emulator import EmulatorClient

COMMANDS = [
    {"command": "start", "description": "Start the bot"},
    {"command": "help", "description": "Show help"},
]


async def error(api: BotApi, method: str, **params: Any) -> tuple[int, str]:
    status, body = await api.json(method, **params)
    assert body["ok"] is False, body
    return status, body["description"]


async def test_commands_per_scope_and_language(api: BotApi, client: EmulatorClient) -> None:
    assert await api.ok("getMyCommands") == []
    assert await api.ok("setMyCommands", commands=COMMANDS) is True
    assert await api.ok("getMyCommands") == COMMANDS
    german = [{"command": "start", "description": "Starte den Bot"}]
    private = {"type": "all_private_chats"}
    assert await api.ok("setMyCommands", commands=german, scope=private, language_code="de") is True
    assert await api.ok("getMyCommands", scope=private, language_code="de") == german
    # Each (scope, language) is its own list: no fallback in getMyCommands.
    assert await api.ok("getMyCommands", scope=private) == []
    assert await api.ok("getMyCommands", language_code="de") == []
    assert await api.ok("getMyCommands") == COMMANDS
    assert await api.ok("deleteMyCommands", scope=private, language_code="de") is True
    assert await api.ok("getMyCommands", scope=private, language_code="de") == []
    assert await api.ok("getMyCommands") == COMMANDS
    [entry] = (await client.profile(BOT_ID))["commands"]
    assert entry == {"scope": {"type": "default"}, "language_code": "", "commands": COMMANDS}


async def test_chat_scopes_are_keyed_by_chat_and_user(api: BotApi) -> None:
    chat = {"type": "chat", "chat_id": -100123}
    admins = {"type": "chat_administrators", "chat_id": "-100123"}
    member = {"type": "chat_member", "chat_id": -100123, "user_id": 42}
    for index, scope in enumerate((chat, admins, member)):
        commands = [{"command": f"c{index}", "description": f"scope {index}"}]
        assert await api.ok("setMyCommands", commands=commands, scope=scope) is True
    assert (await api.ok("getMyCommands", scope=chat))[0]["command"] == "c0"
    assert (await api.ok("getMyCommands", scope={**admins, "chat_id": -100123}))[0]["command"] == "c1"
    assert (await api.ok("getMyCommands", scope=member))[0]["command"] == "c2"
    assert await api.ok("getMyCommands", scope={**member, "user_id": 43}) == []


async def test_form_encoded_commands_and_an_empty_list_deletes(api: BotApi) -> None:
    status, body = await api.form(
        "setMyCommands", commands=json.dumps(COMMANDS), scope='{"type":"all_group_chats"}'
    )
    assert status == 200, body
    assert await api.ok("getMyCommands", scope={"type": "all_group_chats"}) == COMMANDS
    assert await api.ok("setMyCommands", commands=[], scope={"type": "all_group_chats"}) is True
    assert await api.ok("getMyCommands", scope={"type": "all_group_chats"}) == []


async def test_commands_are_trimmed_and_lose_their_slash(api: BotApi) -> None:
    await api.ok("setMyCommands", commands=[{"command": " /menu ", "description": "  Main menu "}])
    assert await api.ok("getMyCommands") == [{"command": "menu", "description": "Main menu"}]


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        ([{"command": "Start", "description": "d"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "do-it", "description": "d"}], "Bad Request: BOT_COMMAND_INVALID"),
        ([{"command": "a" * 33, "description": "d"}], "Bad Request: command length must not exceed 32"),
        ([{"command": "/", "description": "d"}], "Bad Request: command must be non-empty"),
        ([{"command": "ok", "description": " "}], "Bad Request: command description must be non-empty"),
        (
            [{"command": "ok", "description": "d" * 257}],
            "Bad Request: command description length must not exceed 256",
        ),
        (
            [{"command": f"c{i}", "description": "d"} for i in range(101)],
            "Bad Request: BOT_COMMANDS_TOO_MUCH",
        ),
        ([{"command": "ok"}], "Bad Request: can't parse BotCommand: Can't find field \"description\""),
        (["start"], "Bad Request: can't parse BotCommand: expected an Object"),
        ({"command": "ok", "description": "d"}, "Bad Request: expected an Array of BotCommand"),
    ],
)
async def test_invalid_commands(api: BotApi, commands: Any, expected: str) -> None:
    assert await error(api, "setMyCommands", commands=commands) == (400, expected)
    assert await api.ok("getMyCommands") == []


async def test_the_limits_themselves_are_allowed(api: BotApi) -> None:
    commands = [{"command": f"{i:0>32}", "description": "d" * 256} for i in range(100)]
    assert await api.ok("setMyCommands", commands=commands) is True
    assert len(await api.ok("getMyCommands")) == 100


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"type": "everyone"}, "Unsupported type specified"),
        ({"chat_id": 1}, 'Can\'t find field "type"'),
        ({"type": "chat"}, 'Can\'t find field "chat_id"'),
        ({"type": "chat_administrators", "chat_id": ""}, "Empty chat_id specified"),
        ({"type": "chat_member", "chat_id": 5}, 'Can\'t find field "user_id"'),
        ({"type": "chat_member", "chat_id": 5, "user_id": 0}, "Invalid user_id specified"),
        (["default"], "BotCommandScope must be an Object"),
    ],
)
async def test_invalid_scopes(api: BotApi, scope: Any, expected: str) -> None:
    status, description = await error(api, "setMyCommands", commands=COMMANDS, scope=scope)
    assert (status, description) == (400, f"Bad Request: can't parse BotCommandScope: {expected}")


async def test_scope_and_language_text_errors(api: BotApi) -> None:
    status, body = await api.form("getMyCommands", scope="{not json")
    assert (status, body["description"]) == (400, "Bad Request: can't parse BotCommandScope JSON object")
    assert await error(api, "getMyCommands", scope={"type": "chat", "chat_id": "@nobody"}) == (
        400,
        "Bad Request: chat not found",
    )
    for language in ("EN", "eng", "e"):
        assert await error(api, "setMyCommands", commands=COMMANDS, language_code=language) == (
            400,
            "Bad Request: invalid language code specified",
        )


async def test_names_descriptions_and_short_descriptions(api: BotApi) -> None:
    assert await api.ok("getMyName") == {"name": "test_bot"}
    assert await api.ok("setMyName", name="Echo") is True
    assert await api.ok("getMyName") == {"name": "Echo"}
    assert (await api.ok("getMe"))["first_name"] == "Echo"
    assert await api.ok("setMyName", name="Echo DE", language_code="de") is True
    assert await api.ok("getMyName", language_code="de") == {"name": "Echo DE"}
    assert await api.ok("getMyName", language_code="fr") == {"name": ""}
    assert await api.ok("setMyName", name="", language_code="de") is True
    assert await api.ok("getMyName", language_code="de") == {"name": ""}
    assert await api.ok("setMyName") is True
    assert await api.ok("getMyName") == {"name": "test_bot"}

    assert await api.ok("getMyDescription") == {"description": ""}
    assert await api.ok("setMyDescription", description="What this bot does") is True
    assert await api.ok("getMyDescription") == {"description": "What this bot does"}
    assert await api.ok("setMyShortDescription", short_description="Echoes", language_code="en") is True
    assert await api.ok("getMyShortDescription", language_code="en") == {"short_description": "Echoes"}
    assert await api.ok("getMyShortDescription") == {"short_description": ""}


@pytest.mark.parametrize(
    ("method", "field", "limit"),
    [
        ("setMyName", "name", 64),
        ("setMyDescription", "description", 512),
        ("setMyShortDescription", "short_description", 120),
    ],
)
async def test_text_limits(api: BotApi, method: str, field: str, limit: int) -> None:
    assert await api.ok(method, **{field: "x" * limit}) is True
    status, description = await error(api, method, **{field: "x" * (limit + 1)})
    assert status == 400
    assert description.startswith("Bad Request: ")
    assert "too long" in description
    assert await error(api, method, **{field: "x", "language_code": "english"}) == (
        400,
        "Bad Request: invalid language code specified",
    )


async def test_menu_button(api: BotApi, client: EmulatorClient) -> None:
    assert await api.ok("getChatMenuButton") == {"type": "default"}
    assert await api.ok("setChatMenuButton", menu_button={"type": "commands"}) is True
    assert await api.ok("getChatMenuButton") == {"type": "commands"}
    assert await api.ok("getChatMenuButton", chat_id=77) == {"type": "commands"}  # the bot's default
    web_app = {"type": "web_app", "text": "Open", "web_app": {"url": "https://app.example.com/"}}
    assert await api.ok("setChatMenuButton", chat_id=77, menu_button=web_app) is True
    assert await api.ok("getChatMenuButton", chat_id=77) == web_app
    assert await api.ok("getChatMenuButton") == {"type": "commands"}
    assert await api.ok("setChatMenuButton", chat_id=77) is True  # no button = default = the bot's again
    assert await api.ok("getChatMenuButton", chat_id=77) == {"type": "commands"}
    assert await api.ok("setChatMenuButton", menu_button={"type": "default"}) is True
    assert await api.ok("getChatMenuButton") == {"type": "default"}
    assert (await client.profile(BOT_ID))["menu_buttons"]["default"] == {"type": "default"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {
                "menu_button": {
                    "type": "web_app",
                    "text": "Open",
                    "web_app": {"url": "http://app.example.com/"},
                }
            },
            "Bad Request: BUTTON_URL_INVALID",
        ),
        (
            {"menu_button": {"type": "web_app", "text": "Open"}},
            "Bad Request: can't parse menu button: Can't find field \"web_app\"",
        ),
        (
            {"menu_button": {"type": "games"}},
            "Bad Request: can't parse menu button: MenuButton has unsupported type",
        ),
        ({"menu_button": ["commands"]}, "Bad Request: can't parse menu button: MenuButton must be an Object"),
        ({"menu_button": "commands"}, "Bad Request: can't parse menu button JSON object"),
        ({"chat_id": -100, "menu_button": {"type": "commands"}}, "Bad Request: invalid chat_id specified"),
    ],
)
async def test_invalid_menu_buttons(api: BotApi, params: dict[str, Any], expected: str) -> None:
    assert await error(api, "setChatMenuButton", **params) == (400, expected)
    assert await api.ok("getChatMenuButton") == {"type": "default"}


async def test_default_administrator_rights(api: BotApi) -> None:
    groups = await api.ok("getMyDefaultAdministratorRights")
    assert groups["can_pin_messages"] is False
    assert "can_post_messages" not in groups
    assert not any(groups.values())
    channels = await api.ok("getMyDefaultAdministratorRights", for_channels=True)
    assert channels["can_post_messages"] is False
    assert "can_pin_messages" not in channels

    rights = {"can_manage_chat": True, "can_delete_messages": True, "can_post_messages": True}
    assert await api.ok("setMyDefaultAdministratorRights", rights=rights) is True
    groups = await api.ok("getMyDefaultAdministratorRights")
    assert {k for k, v in groups.items() if v} == {"can_manage_chat", "can_delete_messages"}
    assert await api.ok(
        "setMyDefaultAdministratorRights",
        rights={"can_post_messages": True, "can_pin_messages": True},
        for_channels=True,
    )
    channels = await api.ok("getMyDefaultAdministratorRights", for_channels=True)
    assert {k for k, v in channels.items() if v} == {"can_post_messages"}
    # Groups were left alone; no rights at all clears them.
    assert (await api.ok("getMyDefaultAdministratorRights"))["can_delete_messages"] is True
    assert await api.ok("setMyDefaultAdministratorRights") is True
    assert not any((await api.ok("getMyDefaultAdministratorRights")).values())
    assert await error(api, "setMyDefaultAdministratorRights", rights={"can_manage_chat": "yes"}) == (
        400,
        'Bad Request: can\'t parse ChatAdministratorRights: Field "can_manage_chat" must be of type Boolean',
    )


async def test_profiles_are_per_bot(api: BotApi, client: EmulatorClient) -> None:
    other = "654321:OTHER_TOKEN"
    await client.add_bot(other, "other_bot")
    await api.ok("setMyCommands", commands=COMMANDS)
    status, body = await api.json("getMyCommands", token=other)
    assert (status, body["result"]) == (200, [])
    await client.reset()
    assert await api.ok("getMyCommands") == []


async def test_set_my_name_flood_wait_counts_down(api: BotApi, client: EmulatorClient) -> None:
    await client.add_fault("429", method="setMyName", bot_id=BOT_ID, for_seconds=7200)
    status, body = await api.json("setMyName", name="Echo")
    assert status == 429
    first = body["parameters"]["retry_after"]
    assert 7100 < first <= 7200
    assert body["description"] == f"Too Many Requests: retry after {first}"
    status, body = await api.json("setMyName", name="Echo")
    assert status == 429
    assert body["parameters"]["retry_after"] <= first
    # Everything else keeps working, and the failed calls changed nothing.
    assert await api.ok("setMyCommands", commands=COMMANDS) is True
    assert await api.ok("getMyName") == {"name": "test_bot"}
    [fault] = await client.faults()
    assert fault["for_seconds"] == 7200
    await client.clear_faults()
    assert await api.ok("setMyName", name="Echo") is True


async def test_a_flood_wait_ends(api: BotApi, client: EmulatorClient) -> None:
    await client.add_fault("429", method="setMyName", for_seconds=0.2)
    assert (await api.json("setMyName", name="A"))[0] == 429
    await asyncio.sleep(0.3)
    assert await api.ok("setMyName", name="A") is True
    assert await client.faults() == []
