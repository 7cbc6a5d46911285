"""spec.profile: desired items, the plan (read, write what differs, reset what was removed) and
the executor's per-item failures. Pure, with a fake Bot API that keeps a profile like Telegram."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tgbot_operator import profile, profile_items, profile_plan
from tgbot_operator.model import ProfileSpec
from tgbot_operator.profile_items import Item, ItemKind
from tgbot_operator.profile_plan import ProfileMemory, Read, Reset, Write
from tgbot_operator.telegram import BadRequest, RetryAfter, ServerError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=300)

SPEC: dict[str, Any] = {
    "commands": [
        {"scope": {"type": "default"}, "commands": [{"command": "start", "description": "Start the bot "}]},
        {
            "scope": {"type": "chat_member", "chatId": -1001, "userId": 7},
            "languageCode": "de",
            "commands": [{"command": "hilfe", "description": "Hilfe"}],
        },
    ],
    "names": [{"name": "Echo"}, {"languageCode": "de", "name": "Echo DE"}],
    "descriptions": [{"description": "What this bot does"}],
    "shortDescriptions": [{"languageCode": "en", "shortDescription": "Echoes you"}],
    "menuButton": {"type": "web_app", "text": "Open", "url": "https://app.example.com/"},
    "defaultAdministratorRights": {
        "groups": {"canManageChat": True, "canDeleteMessages": True, "canPostMessages": True},
        "channels": {"canPostMessages": True},
    },
}

GROUP_RIGHTS = ("can_manage_chat", "can_delete_messages", "can_pin_messages", "is_anonymous")
CHANNEL_RIGHTS = ("can_manage_chat", "can_post_messages", "can_edit_messages")


class FakeTelegram:
    """Keeps a profile the way the Bot API does (reads answer what was set for that key)."""

    def __init__(self) -> None:
        self.store: dict[Any, Any] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: dict[str, Exception] = {}
        self.now = T0

    def clock(self) -> datetime:
        return self.now

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        self.calls.append((method, dict(params)))
        if method in self.faults:
            raise self.faults[method]
        lang = params.get("language_code", "")
        scope = tuple(sorted((params.get("scope") or {}).items()))
        texts = {"Name": "name", "Description": "description", "ShortDescription": "short_description"}
        for suffix, field in texts.items():
            if method == f"setMy{suffix}":
                self.store[(suffix, lang)] = params[field]
                return True
            if method == f"getMy{suffix}":
                return {field: self.store.get((suffix, lang), "")}
        if method == "setMyCommands":
            self.store[("commands", scope, lang)] = list(params["commands"])
            return True
        if method == "deleteMyCommands":
            self.store.pop(("commands", scope, lang), None)
            return True
        if method == "getMyCommands":
            return self.store.get(("commands", scope, lang), [])
        if method == "setChatMenuButton":
            self.store["menu"] = params["menu_button"]
            return True
        if method == "getChatMenuButton":
            return self.store.get("menu", {"type": "default"})
        if method == "setMyDefaultAdministratorRights":
            audience = CHANNEL_RIGHTS if params["for_channels"] else GROUP_RIGHTS
            granted = {k for k, v in (params.get("rights") or {}).items() if v and k in audience}
            self.store[("rights", params["for_channels"])] = granted
            return True
        if method == "getMyDefaultAdministratorRights":
            audience = CHANNEL_RIGHTS if params["for_channels"] else GROUP_RIGHTS
            granted = self.store.get(("rights", params["for_channels"]), set())
            return {k: k in granted for k in audience}
        raise AssertionError(method)

    def writes(self) -> list[str]:
        return [m for m, _ in self.calls if not m.startswith("get")]


def wanted(spec: Mapping[str, Any] | None = SPEC) -> dict[Item, Any]:
    return profile_items.desired(ProfileSpec.model_validate(spec) if spec is not None else None)


async def run(tg: FakeTelegram, mem: ProfileMemory, spec: Mapping[str, Any] | None = SPEC) -> profile.Outcome:
    return await profile.reconcile(
        wanted(spec), mem, call=tg.call, clock=tg.clock, interval=INTERVAL, generation=3
    )


def test_desired_items_are_keyed_by_scope_and_language_and_trimmed() -> None:
    items = wanted()
    assert len(items) == 9
    default = Item(ItemKind.COMMANDS, "", (("type", "default"),))
    assert items[default] == (("start", "Start the bot"),)
    member = Item(ItemKind.COMMANDS, "de", (("chat_id", -1001), ("type", "chat_member"), ("user_id", 7)))
    assert items[member] == (("hilfe", "Hilfe"),)
    assert items[Item(ItemKind.NAME, "de")] == "Echo DE"
    rights = Item(ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS, for_channels=False)
    assert items[rights] == frozenset({"can_manage_chat", "can_delete_messages", "can_post_messages"})
    assert member.describe() == 'commands (scope chat_member chat -1001 user 7) for language "de"'
    assert wanted(None) == {}


def test_items_survive_status_and_odd_status_is_not_trusted() -> None:
    for item in wanted():
        back = Item.from_status(json.loads(json.dumps(item.to_status())))
        assert back == item
        assert back is not None
        assert type(back.kind) is ItemKind
    assert Item.from_status({"kind": "commands"}) is None
    assert Item.from_status({"kind": ["name"]}) is None
    assert Item.from_status({"kind": "name", "languageCode": "Deutsch"}) is None
    assert Item.from_status({"kind": "rm -rf"}) is None
    assert Item.from_status("name") is None


async def test_first_pass_reads_then_writes_only_what_differs() -> None:
    tg = FakeTelegram()
    tg.store[("Description", "")] = "What this bot does"  # already as declared (BotFather)
    mem = ProfileMemory()
    outcome = await run(tg, mem)
    methods = [m for m, _ in tg.calls]
    assert methods.count("getMyDescription") == 1
    assert "setMyDescription" not in methods  # nothing differs: no write
    assert sorted(tg.writes()) == sorted(
        [
            *("setMyCommands", "setMyCommands", "setMyName", "setMyName", "setMyShortDescription"),
            *("setChatMenuButton", "setMyDefaultAdministratorRights", "setMyDefaultAdministratorRights"),
        ]
    )
    assert tg.store["menu"] == {
        "type": "web_app",
        "text": "Open",
        "web_app": {"url": "https://app.example.com/"},
    }
    assert tg.store[("rights", False)] == {"can_manage_chat", "can_delete_messages"}
    # The description was not set by the operator: never in "applied" (so never reset).
    assert Item(ItemKind.DESCRIPTION) not in mem.applied
    assert len(mem.applied) == 8
    assert profile_plan.in_sync(wanted(), mem)
    assert mem.applied_generation == 3
    cond = profile_plan.condition(wanted(), mem, declared=True)
    assert (cond.status, cond.reason, cond.message) == ("True", "Applied", "9 profile items as declared")
    assert {e[1] for e in outcome.events} == {"ProfileApplied"}
    # Steady: nothing until the check interval, then one read per declared item and no write.
    tg.calls.clear()
    tg.now += timedelta(seconds=10)
    await run(tg, mem)
    assert tg.calls == []
    tg.now += INTERVAL
    await run(tg, mem)
    assert len(tg.calls) == 9
    assert tg.writes() == []


async def test_drift_is_repaired_with_a_warning() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    await run(tg, mem)
    tg.store[("Name", "")] = "Someone else"
    tg.now += INTERVAL
    tg.calls.clear()
    outcome = await run(tg, mem)
    assert tg.writes() == ["setMyName"]
    assert tg.store[("Name", "")] == "Echo"
    assert ("Warning", "ProfileDriftRepaired", "Set the name back to the declared value") in outcome.events
    # A spec change is applied at once (the fresh read says it differs), and is no repair.
    renamed = {**SPEC, "names": [{"name": "Echo 2"}, {"languageCode": "de", "name": "Echo DE"}]}
    tg.calls.clear()
    outcome = await run(tg, mem, renamed)
    assert tg.writes() == ["setMyName"]
    assert outcome.events == [("Normal", "ProfileApplied", "Set the name")]


async def test_removed_entry_is_reset_and_undeclared_ones_never_touched() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    tg.store[("Description", "fr")] = "set in BotFather"
    await run(tg, mem)
    smaller = {**SPEC, "names": [{"name": "Echo"}], "commands": SPEC["commands"][:1]}
    del smaller["menuButton"]
    tg.calls.clear()
    outcome = await run(tg, mem, smaller)
    assert sorted(tg.writes()) == ["deleteMyCommands", "setChatMenuButton", "setMyName"]
    assert ("setMyName", {"name": "", "language_code": "de"}) in tg.calls
    assert tg.store["menu"] == {"type": "default"}
    assert ("commands", (("chat_id", -1001), ("type", "chat_member"), ("user_id", 7)), "de") not in tg.store
    assert tg.store[("Description", "fr")] == "set in BotFather"
    assert all(p.get("language_code") != "fr" for _, p in tg.calls)
    assert sum(1 for e in outcome.events if e[1] == "ProfileEntryReset") == 3
    # No profile at all any more: everything the operator set is reset, then no call at all.
    await run(tg, mem, None)
    assert mem.applied == set()
    tg.calls.clear()
    tg.now += 10 * INTERVAL
    await run(tg, mem, None)
    assert tg.calls == []
    assert profile_plan.condition({}, mem, declared=False).reason == "NotDeclared"
    assert profile_plan.status(mem, declared=False) is None


async def test_no_profile_makes_no_call() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    outcome = await run(tg, mem, None)
    assert tg.calls == []
    assert outcome.until is None


async def test_a_429_holds_back_that_item_only_and_is_honoured() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    tg.faults["setMyName"] = RetryAfter("setMyName", 3600)
    outcome = await run(tg, mem)
    # Flood control is per method: the other language's name waits too, without a call.
    assert tg.writes().count("setMyName") == 1
    cond = profile_plan.condition(wanted(), mem, declared=True)
    assert (cond.status, cond.reason) == ("False", "RateLimited")
    assert "setMyName (name): Telegram asks to wait 3600s, until 2026-03-01T13:00:00Z" in cond.message
    assert "setMyCommands" in tg.writes()
    assert ("Warning", "ProfileRateLimited") in {e[:2] for e in outcome.events}
    assert outcome.until == T0 + INTERVAL  # the next read of the rest, before the wait ends
    # Passes in the meantime do not call setMyName for that item again.
    calls = tg.writes().count("setMyName")
    tg.now += timedelta(seconds=600)
    again = await run(tg, mem)
    assert tg.writes().count("setMyName") == calls
    assert not [e for e in again.events if e[1] == "ProfileRateLimited"]  # no Event per retry
    # After the wait it is applied.
    del tg.faults["setMyName"]
    tg.now = T0 + timedelta(seconds=3601)
    await run(tg, mem)
    assert tg.store[("Name", "")] == "Echo"
    assert profile_plan.condition(wanted(), mem, declared=True).reason == "Applied"


async def test_rejected_value_is_reported_and_retried_when_the_spec_changes() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    tg.faults["setMyShortDescription"] = BadRequest("setMyShortDescription", "Bad Request: nope")
    outcome = await run(tg, mem)
    cond = profile_plan.condition(wanted(), mem, declared=True)
    assert (cond.status, cond.reason) == ("False", "Rejected")
    assert (
        'setMyShortDescription (short description for language "en") rejected: Bad Request: nope'
        in cond.message
    )
    assert ("Warning", "ProfileRejected") in {e[:2] for e in outcome.events}
    tg.calls.clear()
    await run(tg, mem)
    assert "setMyShortDescription" not in tg.writes()  # not hammered
    del tg.faults["setMyShortDescription"]
    changed = {**SPEC, "shortDescriptions": [{"languageCode": "en", "shortDescription": "Echoes"}]}
    await run(tg, mem, changed)
    assert tg.store[("ShortDescription", "en")] == "Echoes"
    assert profile_plan.condition(wanted(changed), mem, declared=True).reason == "Applied"


async def test_server_errors_back_off_per_item() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    tg.faults["getMyName"] = ServerError("getMyName", 502, "Bad Gateway")
    await run(tg, mem)
    cond = profile_plan.condition(wanted(), mem, declared=True)
    assert (cond.status, cond.reason) == ("False", "Pending")
    assert "getMyName (name) failed" in cond.message
    assert "setMyCommands" in tg.writes()
    reads = [m for m, _ in tg.calls].count("getMyName")
    await run(tg, mem)
    assert [m for m, _ in tg.calls].count("getMyName") == reads  # backing off


@pytest.mark.parametrize(
    ("kind", "wanted_value", "live", "equal"),
    [
        ("menuButton", ("commands", "", ""), ("commands", "", ""), True),
        ("menuButton", ("web_app", "Open", "https://a/"), ("web_app", "Open", "https://b/"), False),
        (
            "defaultAdministratorRights",
            frozenset({"a", "x"}),
            (frozenset({"a"}), frozenset({"a", "b"})),
            True,
        ),
        (
            "defaultAdministratorRights",
            frozenset({"a"}),
            (frozenset({"a", "b"}), frozenset({"a", "b"})),
            False,
        ),
        ("name", "Echo", "Echo", True),
        ("name", "Echo", "echo", False),
    ],
)
def test_same(kind: str, wanted_value: Any, live: Any, equal: bool) -> None:
    assert profile_items.same(Item(ItemKind(kind)), wanted_value, live) is equal


def test_plan_is_one_step_per_item() -> None:
    mem = ProfileMemory()
    steps, _ = profile_plan.plan(wanted(), mem, T0, INTERVAL)
    assert all(isinstance(s, Read) for s in steps)
    assert len(steps) == 9
    mem.applied.add(Item(ItemKind.NAME, "fr"))
    steps, _ = profile_plan.plan(wanted(), mem, T0, INTERVAL)
    assert Reset(Item(ItemKind.NAME, "fr")) in steps
    mem.items[Item(ItemKind.NAME)] = profile_plan.ItemState(live="Old", read_at=T0)
    steps, _ = profile_plan.plan(wanted(), mem, T0, INTERVAL)
    assert Write(Item(ItemKind.NAME), "Echo", repair=False) in steps


async def test_a_rejected_read_is_not_hammered_and_a_removed_entry_forgets_its_trouble() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    tg.faults["getMyCommands"] = BadRequest("getMyCommands", "Bad Request: chat not found")
    await run(tg, mem)
    reads = [m for m, _ in tg.calls].count("getMyCommands")
    assert reads == 2  # both command entries, once
    tg.now += timedelta(seconds=30)
    await run(tg, mem)
    assert [m for m, _ in tg.calls].count("getMyCommands") == reads
    assert profile_plan.condition(wanted(), mem, declared=True).reason == "Rejected"
    without = {k: v for k, v in SPEC.items() if k != "commands"}
    await run(tg, mem, without)
    cond = profile_plan.condition(wanted(without), mem, declared=True)
    assert (cond.status, cond.reason) == ("True", "Applied")


async def test_last_check_time_moves_only_with_reads() -> None:
    tg, mem = FakeTelegram(), ProfileMemory()
    await run(tg, mem)
    first = mem.checked_at
    assert first == T0
    tg.now += timedelta(seconds=30)
    await run(tg, mem)
    assert mem.checked_at == first  # nothing was due: status stays as it was
    tg.now += INTERVAL
    await run(tg, mem)
    assert mem.checked_at == tg.now
