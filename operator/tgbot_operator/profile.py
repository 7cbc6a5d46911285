"""The bot's profile (``spec.profile``): commands, names, descriptions, menu button, admin rights.

Each declared thing is an :class:`Item` (commands per scope+language, a name per language, ...)
with the value the spec wants. :func:`plan` compares that with what was last read back from
Telegram and with what the operator applied before (``status.profile.applied``) and says what to
call; :func:`reconcile` makes the calls. Only declared items are read or written; an item the
operator applied and the spec no longer declares is reset; anything else is never touched.

Failures stay per item and never reach the webhook's reconciliation: a ``setMyName`` 429 with a
``retry_after`` of hours holds back that one item while the rest (and the webhook) carry on.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from . import names
from .botapi import BadRequest, BotApiError, NotFound, RetryAfter, Unauthorized
from .conditions import Condition, rfc3339
from .model import ProfileSpec

Kind = Literal[
    "commands", "name", "description", "shortDescription", "menuButton", "defaultAdministratorRights"
]
KINDS: tuple[Kind, ...] = (
    "commands",
    "name",
    "description",
    "shortDescription",
    "menuButton",
    "defaultAdministratorRights",
)
EventType = Literal["Normal", "Warning"]
Event = tuple[EventType, str, str]
Call = Callable[[str, Mapping[str, Any]], Awaitable[Any]]

#: Per pass at most this many profile calls (a big profile spreads over passes a second apart).
MAX_CALLS_PER_PASS = 40
MAX_BACKOFF = timedelta(minutes=5)
#: A rejected value is tried again after this long (or at once when the spec changes it).
REJECTED_RETRY = timedelta(minutes=10)
MAX_MESSAGE = 300


# --- items ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Item:
    """One thing of the profile Telegram keeps separately (its own get/set call)."""

    kind: Kind
    language: str = ""
    scope: tuple[tuple[str, str | int], ...] = ()  # commands: the BotCommandScope, sorted pairs
    for_channels: bool = False  # defaultAdministratorRights: channels or groups

    def describe(self) -> str:
        lang = f' for language "{self.language}"' if self.language else ""
        if self.kind == "commands":
            scope = dict(self.scope)
            where = str(scope.get("type", "default"))
            if "chat_id" in scope:
                where += f" chat {scope['chat_id']}"
            if "user_id" in scope:
                where += f" user {scope['user_id']}"
            return f"commands (scope {where}){lang}"
        if self.kind == "defaultAdministratorRights":
            return f"default administrator rights for {'channels' if self.for_channels else 'groups'}"
        label = {"name": "name", "description": "description", "shortDescription": "short description"}
        return f"{label.get(self.kind, 'menu button')}{lang}"

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.language:
            out["languageCode"] = self.language
        if self.kind == "commands":
            scope = dict(self.scope)
            out["scope"] = {_CAMEL.get(k, k): v for k, v in scope.items()}
        if self.kind == "defaultAdministratorRights":
            out["forChannels"] = self.for_channels
        return out

    @classmethod
    def from_status(cls, raw: Any) -> Item | None:
        """An item as :meth:`to_status` wrote it (None for anything else: it is not trusted)."""
        if not isinstance(raw, Mapping) or raw.get("kind") not in KINDS:
            return None
        kind: Kind = raw["kind"]
        language = raw.get("languageCode") or ""
        if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
            return None
        scope: tuple[tuple[str, str | int], ...] = ()
        if kind == "commands":
            raw_scope = raw.get("scope")
            if not isinstance(raw_scope, Mapping) or not isinstance(raw_scope.get("type"), str):
                return None
            scope = scope_pairs(
                str(raw_scope["type"]),
                _int_or_none(raw_scope.get("chatId")),
                _int_or_none(raw_scope.get("userId")),
            )
        return cls(
            kind=kind,
            language=language if kind not in ("menuButton", "defaultAdministratorRights") else "",
            scope=scope,
            for_channels=bool(raw.get("forChannels")) if kind == "defaultAdministratorRights" else False,
        )


_CAMEL = {"chat_id": "chatId", "user_id": "userId"}
_LANGUAGE = re.compile(r"(?:[a-z]{2})?")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def scope_pairs(type_: str, chat_id: int | None, user_id: int | None) -> tuple[tuple[str, str | int], ...]:
    pairs: list[tuple[str, str | int]] = [("type", type_)]
    if chat_id is not None:
        pairs.append(("chat_id", chat_id))
    if user_id is not None:
        pairs.append(("user_id", user_id))
    return tuple(sorted(pairs))


def snake(name: str) -> str:
    """``canManageChat`` -> ``can_manage_chat`` (the spec is camelCase, the Bot API snake_case)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


# Values: commands ((command, description), ...); texts str; menu button (type, text, url);
# rights: the granted rights (a frozenset of Bot API names).
Value = Any


def desired(profile: ProfileSpec | None) -> dict[Item, Value]:
    """Every declared item and the value the spec wants for it (as Telegram stores it: trimmed)."""
    if profile is None:
        return {}
    wanted: dict[Item, Value] = {}
    for entry in profile.commands:
        scope = scope_pairs(entry.scope.type, entry.scope.chat_id, entry.scope.user_id)
        item = Item("commands", entry.language_code, scope)
        wanted[item] = tuple((c.command.strip(), c.description.strip()) for c in entry.commands)
    for name in profile.names:
        wanted[Item("name", name.language_code)] = name.name.strip()
    for text in profile.descriptions:
        wanted[Item("description", text.language_code)] = text.description.strip()
    for short in profile.short_descriptions:
        wanted[Item("shortDescription", short.language_code)] = short.short_description.strip()
    if profile.menu_button is not None:
        button = profile.menu_button
        wanted[Item("menuButton")] = (button.type, button.text or "", button.url or "")
    rights = profile.default_administrator_rights
    if rights is not None:
        for for_channels, granted in ((False, rights.groups), (True, rights.channels)):
            if granted is not None:
                wanted[Item("defaultAdministratorRights", for_channels=for_channels)] = frozenset(
                    snake(k) for k, v in granted.items() if v
                )
    return wanted


# --- the Bot API calls of an item -------------------------------------------------------------


def _language(item: Item) -> dict[str, Any]:
    return {"language_code": item.language} if item.language else {}


_TEXT_CALLS: dict[str, tuple[str, str, str]] = {
    # kind: (getter, setter, field)
    "name": ("getMyName", "setMyName", "name"),
    "description": ("getMyDescription", "setMyDescription", "description"),
    "shortDescription": ("getMyShortDescription", "setMyShortDescription", "short_description"),
}


def read_call(item: Item) -> tuple[str, dict[str, Any]]:
    if item.kind == "commands":
        return "getMyCommands", {"scope": dict(item.scope), **_language(item)}
    if item.kind == "menuButton":
        return "getChatMenuButton", {}
    if item.kind == "defaultAdministratorRights":
        return "getMyDefaultAdministratorRights", {"for_channels": item.for_channels}
    return _TEXT_CALLS[item.kind][0], _language(item)


def write_call(item: Item, value: Value) -> tuple[str, dict[str, Any]]:
    if item.kind == "commands":
        commands = [{"command": c, "description": d} for c, d in value]
        return "setMyCommands", {"commands": commands, "scope": dict(item.scope), **_language(item)}
    if item.kind == "menuButton":
        type_, text, url = value
        button: dict[str, Any] = {"type": type_}
        if type_ == "web_app":
            button.update(text=text, web_app={"url": url})
        return "setChatMenuButton", {"menu_button": button}
    if item.kind == "defaultAdministratorRights":
        rights = dict.fromkeys(sorted(value), True)
        return "setMyDefaultAdministratorRights", {"rights": rights, "for_channels": item.for_channels}
    _, setter, field_ = _TEXT_CALLS[item.kind]
    return setter, {field_: value, **_language(item)}


def reset_call(item: Item) -> tuple[str, dict[str, Any]]:
    """What Telegram has without a setting: no commands, no text, the default button, no rights."""
    if item.kind == "commands":
        return "deleteMyCommands", {"scope": dict(item.scope), **_language(item)}
    if item.kind == "menuButton":
        return "setChatMenuButton", {"menu_button": {"type": "default"}}
    if item.kind == "defaultAdministratorRights":
        return "setMyDefaultAdministratorRights", {"for_channels": item.for_channels}
    return write_call(item, "")


class UnexpectedAnswer(ValueError):
    pass


def parse_read(item: Item, result: Any) -> Value:
    """The value a getter answered, in the shape :func:`desired` uses."""
    if item.kind == "commands":
        if not isinstance(result, list):
            raise UnexpectedAnswer("not a list of commands")
        out = []
        for command in result:
            if not isinstance(command, Mapping):
                raise UnexpectedAnswer("a command is not an object")
            out.append((str(command.get("command", "")), str(command.get("description", ""))))
        return tuple(out)
    if not isinstance(result, Mapping):
        raise UnexpectedAnswer("the result is not an object")
    if item.kind == "menuButton":
        web_app = result.get("web_app")
        url = web_app.get("url", "") if isinstance(web_app, Mapping) else ""
        return (str(result.get("type", "")), str(result.get("text", "") or ""), str(url or ""))
    if item.kind == "defaultAdministratorRights":
        # (granted, every right this audience has): rights that don't apply are not compared.
        return (
            frozenset(k for k, v in result.items() if v is True),
            frozenset(k for k, v in result.items() if isinstance(v, bool)),
        )
    value = result.get(_TEXT_CALLS[item.kind][2])
    if not isinstance(value, str):
        raise UnexpectedAnswer(f"no {_TEXT_CALLS[item.kind][2]} in the result")
    return value


def same(item: Item, wanted: Value, live: Value) -> bool:
    if item.kind == "defaultAdministratorRights":
        granted, offered = live
        return bool(wanted & offered == granted)
    if item.kind == "menuButton":
        # Only a web_app button has text and a URL to compare.
        return bool(live == wanted if wanted[0] == "web_app" else live[0] == wanted[0])
    return bool(wanted == live)


def after_write(item: Item, wanted: Value, live: Value | None) -> Value:
    """What a read would answer right after a successful write of ``wanted``."""
    if item.kind == "defaultAdministratorRights":
        offered = live[1] if live is not None else wanted
        return (wanted & offered, offered)
    return wanted


# --- memory and plan --------------------------------------------------------------------------

ProblemReason = Literal["RateLimited", "Rejected", "Failing"]


@dataclass(frozen=True)
class ItemProblem:
    reason: ProblemReason
    message: str
    value: Value = None  # Rejected: the value Telegram refused (a new one is tried at once)


@dataclass
class ItemState:
    live: Value = None  # None: not read (or not known since a failure)
    written: Value = None  # what this worker last wrote (a later difference is drift)
    read_at: datetime | None = None
    not_before: datetime | None = None
    failures: int = 0
    problem: ItemProblem | None = None


@dataclass
class ProfileMemory:
    """What the worker knows of the profile: ``applied`` comes from (and goes to) status."""

    applied: set[Item] = field(default_factory=set)
    items: dict[Item, ItemState] = field(default_factory=dict)
    #: Flood control is per method: after a 429 on setMyName no setMyName (any language) until then.
    method_waits: dict[str, datetime] = field(default_factory=dict)
    checked_at: datetime | None = None
    applied_generation: int | None = None

    def state(self, item: Item) -> ItemState:
        return self.items.setdefault(item, ItemState())


@dataclass(frozen=True)
class Read:
    item: Item
    value: Value = None  # the declared value (a rejection remembers what it was for)


@dataclass(frozen=True)
class Write:
    item: Item
    value: Value
    repair: bool  # Telegram had something else than what the operator applied before


@dataclass(frozen=True)
class Reset:
    item: Item


Step = Read | Write | Reset


def plan(
    wanted: Mapping[Item, Value], mem: ProfileMemory, now: datetime, interval: timedelta
) -> tuple[list[Step], datetime | None]:
    """The calls due now (at most one per item) and when the next one is due otherwise."""
    steps: list[Step] = []
    deadlines: list[datetime] = []
    for item in sorted(wanted):
        value = wanted[item]
        st = mem.items.get(item) or ItemState()
        problem = st.problem
        retry_now = (
            problem is not None
            and problem.reason == "Rejected"
            and problem.value is not None
            and problem.value != value
        )
        if st.not_before is not None and now < st.not_before and not retry_now:
            deadlines.append(st.not_before)
            continue
        if st.live is None or st.read_at is None or st.read_at + interval <= now:
            steps.append(Read(item, value))
        elif not same(item, value, st.live):
            wait = mem.method_waits.get(write_call(item, value)[0])
            if wait is not None and now < wait:
                deadlines.append(wait)
            else:
                # Drift: Telegram no longer has what was written; a spec change is no repair.
                steps.append(Write(item, value, repair=st.written is not None and st.written == value))
        else:
            deadlines.append(st.read_at + interval)
    for item in sorted(mem.applied - set(wanted)):
        st = mem.items.get(item) or ItemState()
        wait = mem.method_waits.get(reset_call(item)[0])
        later = [t for t in (st.not_before, wait) if t is not None and now < t]
        if later:
            deadlines.append(max(later))
        else:
            steps.append(Reset(item))
    return steps, min(deadlines) if deadlines else None


def in_sync(wanted: Mapping[Item, Value], mem: ProfileMemory) -> bool:
    if mem.applied - set(wanted):
        return False
    for item, value in wanted.items():
        st = mem.items.get(item)
        if st is None or st.live is None or st.problem is not None or not same(item, value, st.live):
            return False
    return True


# --- the executor -----------------------------------------------------------------------------


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    until: datetime | None = None
    calls: int = 0
    token_rejected: bool = False


async def reconcile(
    wanted: Mapping[Item, Value],
    mem: ProfileMemory,
    *,
    call: Call,
    clock: Callable[[], datetime],
    interval: timedelta,
    generation: int | None,
    redact: Callable[[str], str] = lambda text: text,
) -> Outcome:
    """Read, write and reset until the plan is empty (or the pass's call budget is spent)."""
    outcome = Outcome()
    now = clock()
    # Forget what is neither declared nor to be reset (a removed entry that never got applied).
    for item in [i for i in mem.items if i not in wanted and i not in mem.applied]:
        del mem.items[item]
    for method in [m for m, until in mem.method_waits.items() if until <= now]:
        del mem.method_waits[method]
    for _ in range(4):  # read, then write what differs, then nothing; a spare round
        steps, until = plan(wanted, mem, clock(), interval)
        outcome.until = until
        if not steps:
            break
        for step in steps:
            wait = mem.method_waits.get(_method(step))
            if wait is not None and clock() < wait and not isinstance(step, Read):
                continue  # a 429 earlier in this round: the plan of the next round defers it
            if outcome.calls >= MAX_CALLS_PER_PASS:
                outcome.until = clock() + timedelta(seconds=1)
                return outcome
            outcome.calls += 1
            if not await _perform(step, mem, call, clock, interval, outcome, redact):
                outcome.token_rejected = True
                return outcome
    if in_sync(wanted, mem):
        mem.applied_generation = generation
    return outcome


def _method(step: Step) -> str:
    if isinstance(step, Read):
        return read_call(step.item)[0]
    if isinstance(step, Write):
        return write_call(step.item, step.value)[0]
    return reset_call(step.item)[0]


async def _perform(
    step: Step,
    mem: ProfileMemory,
    call: Call,
    clock: Callable[[], datetime],
    interval: timedelta,
    outcome: Outcome,
    redact: Callable[[str], str],
) -> bool:
    """One call; False when the token was refused (the worker's own checks take over)."""
    item = step.item
    st = mem.state(item)
    if isinstance(step, Read):
        method, params = read_call(item)
    elif isinstance(step, Write):
        method, params = write_call(item, step.value)
    else:
        method, params = reset_call(item)
    try:
        result = await call(method, params)
        if isinstance(step, Read):
            st.live, st.read_at = parse_read(item, result), clock()
            mem.checked_at = st.read_at  # (only when read: status is not rewritten every pass)
    except (Unauthorized, NotFound):
        st.live = None
        return False
    except RetryAfter as exc:
        st.live = None if isinstance(step, Read) else st.live
        until = clock() + timedelta(seconds=exc.seconds)
        st.not_before = until
        mem.method_waits[method] = until
        _problem(
            st,
            ItemProblem(
                "RateLimited",
                f"{method} ({item.describe()}): Telegram asks to wait {exc.seconds:g}s, "
                f"until {rfc3339(until)}",
            ),
            outcome,
        )
        return True
    except BadRequest as exc:
        value = step.value if isinstance(step, Write | Read) else None
        st.not_before = clock() + max(REJECTED_RETRY, interval)
        _problem(
            st,
            ItemProblem(
                "Rejected",
                f"{method} ({item.describe()}) rejected: {redact(exc.description)}"[:MAX_MESSAGE],
                value,
            ),
            outcome,
        )
        return True
    except (BotApiError, UnexpectedAnswer) as exc:
        st.failures += 1
        delay = min(MAX_BACKOFF.total_seconds(), 5.0 * 2 ** (st.failures - 1))
        st.not_before = clock() + timedelta(seconds=delay)
        st.live = None if isinstance(step, Read) else st.live
        message = f"{method} ({item.describe()}) failed: {redact(str(exc))}"[:MAX_MESSAGE]
        _problem(st, ItemProblem("Failing", message), outcome)
        return True
    # Success.
    st.failures, st.not_before = 0, None
    if st.problem is not None and not isinstance(step, Read):
        st.problem = None
    elif st.problem is not None and st.problem.reason != "Rejected":
        st.problem = None  # a read works again; a rejection stays until a write succeeds
    if isinstance(step, Write):
        st.live, st.read_at = after_write(item, step.value, st.live), clock()
        st.written = step.value
        mem.applied.add(item)
        if step.repair:
            outcome.events.append(
                ("Warning", "ProfileDriftRepaired", f"Set the {item.describe()} back to the declared value")
            )
        else:
            outcome.events.append(("Normal", "ProfileApplied", f"Set the {item.describe()}"))
    elif isinstance(step, Reset):
        mem.applied.discard(item)
        mem.items.pop(item, None)
        outcome.events.append(
            ("Normal", "ProfileEntryReset", f"Reset the {item.describe()}: it is no longer in spec.profile")
        )
    return True


def _problem(st: ItemState, problem: ItemProblem, outcome: Outcome) -> None:
    """Record it; an Event only when the kind of trouble changes (not at every retry)."""
    before = st.problem
    st.problem = problem
    if before is None or before.reason != problem.reason:
        reason = {"RateLimited": "ProfileRateLimited", "Rejected": "ProfileRejected"}.get(
            problem.reason, "ProfileCallFailed"
        )
        outcome.events.append(("Warning", reason, problem.message))


# --- status -----------------------------------------------------------------------------------


def condition(wanted: Mapping[Item, Value], mem: ProfileMemory, declared: bool) -> Condition:
    if not declared and not mem.applied:
        return Condition(
            names.PROFILE_APPLIED,
            "True",
            "NotDeclared",
            "no spec.profile: the operator leaves the profile alone",
        )
    problems = [
        st.problem
        for item, st in sorted(mem.items.items())
        if st.problem is not None and (item in wanted or item in mem.applied)
    ]
    for reason in ("Rejected", "RateLimited"):
        found = [p.message for p in problems if p.reason == reason]
        if found:
            return Condition(names.PROFILE_APPLIED, "False", reason, _join(found))
    if in_sync(wanted, mem):
        count = len(wanted)
        return Condition(
            names.PROFILE_APPLIED,
            "True",
            "Applied",
            f"{count} profile item{'s' if count != 1 else ''} as declared",
        )
    failing = [p.message for p in problems]
    pending = [
        item.describe()
        for item, value in sorted(wanted.items())
        if (st := mem.items.get(item)) is None or st.live is None or not same(item, value, st.live)
    ]
    pending += [f"{item.describe()} (to reset)" for item in sorted(mem.applied - set(wanted))]
    return Condition(
        names.PROFILE_APPLIED,
        "False",
        "Pending",
        _join(failing or [f"not applied yet: {', '.join(pending)}"]),
    )


def _join(messages: Sequence[str]) -> str:
    text = "; ".join(messages[:3])
    if len(messages) > 3:
        text += f"; and {len(messages) - 3} more"
    return text[: MAX_MESSAGE * 2]


def status(mem: ProfileMemory, declared: bool) -> dict[str, Any] | None:
    """``status.profile`` (None when there is no profile to speak of)."""
    if not declared and not mem.applied:
        return None
    out: dict[str, Any] = {"applied": [item.to_status() for item in sorted(mem.applied)]}
    if mem.applied_generation is not None:
        out["appliedGeneration"] = mem.applied_generation
    if mem.checked_at is not None:
        out["lastCheckTime"] = rfc3339(mem.checked_at)
    return out


def memory_from_status(raw: Any) -> ProfileMemory:
    mem = ProfileMemory()
    if not isinstance(raw, Mapping):
        return mem
    for entry in raw.get("applied") or ():
        item = Item.from_status(entry)
        if item is not None:
            mem.applied.add(item)
    generation = raw.get("appliedGeneration")
    mem.applied_generation = generation if isinstance(generation, int) else None
    return mem
