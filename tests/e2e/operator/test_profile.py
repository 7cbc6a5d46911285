"""End to end: spec.profile against the real API server and the emulator (commands & co.)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support import Cluster, Emulator

from .conftest import OperatorFactory
from .support import (
    Bots,
    apply,
    assert_no_secrets_leaked,
    bot_manifest,
    condition,
    events,
    eventually,
    get,
    kubectl,
    token_secret,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PROFILE_METHODS = {
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "setMyName",
    "getMyName",
    "setMyDescription",
    "getMyDescription",
    "setMyShortDescription",
    "getMyShortDescription",
    "setChatMenuButton",
    "getChatMenuButton",
    "setMyDefaultAdministratorRights",
    "getMyDefaultAdministratorRights",
}

PROFILE: dict[str, Any] = {
    "commands": [
        {
            "commands": [
                {"command": "start", "description": "Start the bot"},
                {"command": "help", "description": "Show help"},
            ]
        },
        {
            "scope": {"type": "chat", "chatId": 4242},
            "languageCode": "de",
            "commands": [{"command": "hilfe", "description": "Hilfe zeigen"}],
        },
    ],
    "names": [{"name": "Echo"}, {"languageCode": "de", "name": "Echo DE"}],
    "descriptions": [{"description": "What this bot does"}],
    "shortDescriptions": [{"shortDescription": "Echoes you"}],
    "menuButton": {"type": "web_app", "text": "Open", "url": "https://app.example.com/"},
    "defaultAdministratorRights": {
        "groups": {"canDeleteMessages": True, "canPinMessages": True},
        "channels": {"canPostMessages": True},
    },
}


async def bot_api(emulator: Emulator, token: str, method: str, **params: Any) -> Any:
    """Call the Bot API as someone else would (BotFather, another tool): not the operator."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emulator.url}/bot{token}/{method}", json=params) as r,
    ):
        body = await r.json()
    assert body["ok"], body
    return body["result"]


async def profile_calls(emulator: Emulator, bot_id: int) -> list[dict[str, Any]]:
    return [c for c in await emulator.client.calls(bot_id) if c["method"] in PROFILE_METHODS]


def commands_of(profile: dict[str, Any], scope_type: str, language: str = "") -> list[dict[str, str]] | None:
    for entry in profile["commands"]:
        if entry["scope"]["type"] == scope_type and entry["language_code"] == language:
            return list(entry["commands"])
    return None


async def test_profile_applied_kept_reset_and_undeclared_untouched(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    token = await bots.new_token(1401, "profile_bot")
    # Set elsewhere (BotFather): never declared, so never touched.
    await bot_api(emulator, token, "setMyDescription", description="Beschreibung", language_code="fr")
    await bot_api(
        emulator,
        token,
        "setMyCommands",
        commands=[{"command": "admin", "description": "Admins only"}],
        scope={"type": "all_chat_administrators"},
    )
    by_test = len(await profile_calls(emulator, 1401))
    operator = start_operator()
    prof = await bots.ready_bot(
        "prof", 1401, token=token, until="ProfileApplied", reason="Applied", profile=PROFILE
    )
    manifest, bot = prof.manifest, prof.body
    assert condition(bot, "Ready")["status"] == "True"
    assert condition(bot, "ProfileApplied")["message"] == "9 profile items as declared"

    live = await emulator.client.profile(1401)
    assert commands_of(live, "default") == [
        {"command": "start", "description": "Start the bot"},
        {"command": "help", "description": "Show help"},
    ]
    assert commands_of(live, "chat", "de") == [{"command": "hilfe", "description": "Hilfe zeigen"}]
    assert live["names"] == {"": "Echo", "de": "Echo DE"}
    assert live["descriptions"] == {"": "What this bot does", "fr": "Beschreibung"}
    assert live["short_descriptions"] == {"": "Echoes you"}
    assert live["menu_buttons"]["default"] == {
        "type": "web_app",
        "text": "Open",
        "web_app": {"url": "https://app.example.com/"},
    }
    groups = live["default_administrator_rights"]["groups"]
    assert {k for k, v in groups.items() if v} == {"can_delete_messages", "can_pin_messages"}
    channels = live["default_administrator_rights"]["channels"]
    assert {k for k, v in channels.items() if v} == {"can_post_messages"}
    # The undeclared ones are as they were, and no call ever named them.
    assert commands_of(live, "all_chat_administrators") == [
        {"command": "admin", "description": "Admins only"}
    ]
    calls = (await profile_calls(emulator, 1401))[by_test:]
    assert calls
    assert not [c for c in calls if "all_chat_administrators" in json.dumps(c["params"])]
    assert not [c for c in calls if c["params"].get("language_code") == "fr"]
    status = bot["status"]["profile"]
    assert {"kind": "name", "languageCode": "de"} in status["applied"]
    assert status["appliedGeneration"] == bot["metadata"]["generation"]
    reasons = {e["reason"] for e in await events(cluster, namespace)}
    assert "ProfileApplied" in reasons

    # Steady state: reads only (at most one per declared item per check), no write.
    writes = [c for c in calls if not c["method"].startswith("get")]
    await asyncio.sleep(5)
    calls = (await profile_calls(emulator, 1401))[by_test:]
    assert [c for c in calls if not c["method"].startswith("get")] == writes

    # Drift: someone renames the bot; the next check puts the declared name back.
    await bot_api(emulator, token, "setMyName", name="Hijacked")
    await eventually(
        lambda: emulator.client.profile(1401),
        lambda p: p["names"].get("") == "Echo",
        timeout=20,
        what="the name repaired",
    )
    await eventually(
        lambda: events(cluster, namespace),
        lambda evs: any(e["reason"] == "ProfileDriftRepaired" for e in evs),
        timeout=10,
        what="a ProfileDriftRepaired Event",
    )

    # Entries removed from the spec are reset; the undeclared ones still untouched.
    smaller = {**PROFILE, "commands": PROFILE["commands"][:1], "names": [{"name": "Echo"}]}
    del smaller["menuButton"]
    await apply(cluster, namespace, {**manifest, "spec": {**manifest["spec"], "profile": smaller}})
    live = await eventually(
        lambda: emulator.client.profile(1401),
        lambda p: (
            commands_of(p, "chat", "de") is None
            and "de" not in p["names"]
            and p["menu_buttons"]["default"] == {"type": "default"}
        ),
        timeout=20,
        what="the removed entries reset",
    )
    assert commands_of(live, "default") is not None
    assert commands_of(live, "all_chat_administrators") == [
        {"command": "admin", "description": "Admins only"}
    ]
    assert live["descriptions"]["fr"] == "Beschreibung"
    bot = await wait_condition(cluster, namespace, "prof", "ProfileApplied", "True", reason="Applied")
    applied = bot["status"]["profile"]["applied"]
    assert {"kind": "menuButton"} not in applied
    assert {"kind": "name", "languageCode": "de"} not in applied
    assert "ProfileEntryReset" in {e["reason"] for e in await events(cluster, namespace)}
    await assert_no_secrets_leaked(cluster, namespace, operator, token)


async def test_no_profile_no_profile_call(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    start_operator()
    await bots.ready_bot("plain", 1402)
    await asyncio.sleep(4)  # a couple of checks
    assert await profile_calls(emulator, 1402) == []
    bot = await get(cluster, namespace, "tgbot", "plain")
    assert bot is not None
    assert condition(bot, "ProfileApplied")["reason"] == "NotDeclared"
    assert "profile" not in bot["status"]


async def test_flood_wait_on_set_my_name_is_honoured_and_blocks_nothing_else(
    cluster: Cluster, namespace: str, emulator: Emulator, start_operator: OperatorFactory, bots: Bots
) -> None:
    token = await bots.new_token(1403, "flood_bot")
    await emulator.client.add_fault("429", method="setMyName", for_seconds=12)
    start_operator()
    profile = {"commands": PROFILE["commands"][:1], "names": PROFILE["names"]}
    await apply(
        cluster,
        namespace,
        token_secret("flood-token", token),
        bot_manifest("flood", emulator.url, "flood-token", profile=profile),
    )
    # The webhook is registered and the commands applied while setMyName has to wait.
    bot = await wait_condition(
        cluster, namespace, "flood", "ProfileApplied", "False", reason="RateLimited", timeout=30
    )
    bot = await wait_condition(cluster, namespace, "flood", "Ready", "True", timeout=30)
    assert "setMyName (name): Telegram asks to wait" in condition(bot, "ProfileApplied")["message"]
    assert commands_of(await emulator.client.profile(1403), "default") is not None
    assert (await emulator.client.webhook(1403))["url"] == bot["spec"]["webhook"]["url"]
    assert "ProfileRateLimited" in {e["reason"] for e in await events(cluster, namespace)}
    # Honoured: no setMyName while the wait lasts (one call hit the 429, nothing more).
    await asyncio.sleep(4)
    set_name = [c for c in await profile_calls(emulator, 1403) if c["method"] == "setMyName"]
    assert len(set_name) == 1, set_name
    # After the wait, both names are set.
    await wait_condition(cluster, namespace, "flood", "ProfileApplied", "True", reason="Applied", timeout=40)
    assert (await emulator.client.profile(1403))["names"] == {"": "Echo", "de": "Echo DE"}


def bot_yaml(profile: dict[str, Any], name: str = "invalid") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "tgbot.dev/v1alpha1",
            "kind": "TelegramBot",
            "metadata": {"name": name},
            "spec": {"tokenSecretRef": {"name": "t"}, "webhook": {"url": "https://x/y"}, "profile": profile},
        }
    )


def commands(*names: str) -> list[dict[str, str]]:
    return [{"command": n, "description": "d"} for n in names]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"commands": [{"commands": commands("Start!")}]}, "should match '^[a-z0-9_]+$'"),
        ({"commands": [{"commands": commands("x" * 33)}]}, "may not be more than 32 bytes"),
        (
            {"commands": [{"commands": [{"command": "a", "description": "d" * 257}]}]},
            "may not be more than 256",
        ),
        (
            {"commands": [{"commands": [{"command": "a", "description": ""}]}]},
            "should be at least 1 chars long",
        ),
        (
            {"commands": [{"commands": commands(*[f"c{i}" for i in range(101)])}]},
            "must have at most 100 items",
        ),
        (
            {"commands": [{"scope": {"type": "chat"}, "commands": commands("a")}]},
            "commands scope chat needs a chatId",
        ),
        (
            {"commands": [{"scope": {"type": "chat_member", "chatId": 5}, "commands": commands("a")}]},
            "commands scope chat_member needs a userId",
        ),
        (
            {"commands": [{"scope": {"type": "default", "chatId": 5}, "commands": commands("a")}]},
            "commands scope default does not take a chatId",
        ),
        (
            {
                "commands": [
                    {"commands": commands("a")},
                    {"scope": {"type": "default"}, "commands": commands("b")},
                ]
            },
            "two entries for the same scope and languageCode",
        ),
        ({"commands": [{"languageCode": "EN", "commands": commands("a")}]}, "languageCode"),
        ({"names": [{"name": "x" * 65}]}, "may not be more than 64"),
        ({"names": [{"name": "a"}, {"languageCode": "", "name": "b"}]}, "Duplicate value"),
        ({"descriptions": [{"description": "x" * 513}]}, "may not be more than 512"),
        ({"shortDescriptions": [{"shortDescription": "x" * 121}]}, "may not be more than 120"),
        ({"menuButton": {"type": "web_app", "text": "Open"}}, "text and url are required for type web_app"),
        (
            {"menuButton": {"type": "web_app", "text": "Open", "url": "http://app.example.com/"}},
            "must be an https:// URL",
        ),
        ({"menuButton": {"type": "commands", "text": "x"}}, "not allowed for default and commands"),
        ({"menuButton": {"type": "keyboard"}}, "Unsupported value"),
    ],
)
async def test_invalid_profiles_are_refused_with_a_readable_message(
    cluster: Cluster, namespace: str, crd_installed: None, profile: dict[str, Any], message: str
) -> None:
    result = await kubectl(cluster, "apply", "-n", namespace, "-f", "-", input=bot_yaml(profile), check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
