"""spec.profile as items: what the spec declares, and each item's Bot API calls. Pure.

Each declared thing is an :class:`Item` (commands per scope+language, a name per language, ...)
with the value the spec wants (:func:`desired`); :func:`read_call`, :func:`write_call` and
:func:`reset_call` say how to read, set and reset it, :func:`parse_read` reads the answer.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import ProfileSpec


class ItemKind(enum.StrEnum):
    """What a profile item is (its name in ``status.profile.applied``): it says which Bot API
    calls read, set and reset it."""

    COMMANDS = "commands"
    NAME = "name"
    DESCRIPTION = "description"
    SHORT_DESCRIPTION = "shortDescription"
    MENU_BUTTON = "menuButton"
    DEFAULT_ADMINISTRATOR_RIGHTS = "defaultAdministratorRights"


#: Items Telegram keeps once per bot, not per language.
_WITHOUT_LANGUAGE = frozenset({ItemKind.MENU_BUTTON, ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS})


# --- items ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Item:
    """One thing of the profile Telegram keeps separately (its own get/set call)."""

    kind: ItemKind
    language: str = ""
    scope: tuple[tuple[str, str | int], ...] = ()  # commands: the BotCommandScope, sorted pairs
    for_channels: bool = False  # defaultAdministratorRights: channels or groups

    def describe(self) -> str:
        lang = f' for language "{self.language}"' if self.language else ""
        if self.kind is ItemKind.COMMANDS:
            scope = dict(self.scope)
            where = str(scope.get("type", "default"))
            if "chat_id" in scope:
                where += f" chat {scope['chat_id']}"
            if "user_id" in scope:
                where += f" user {scope['user_id']}"
            return f"commands (scope {where}){lang}"
        if self.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
            return f"default administrator rights for {'channels' if self.for_channels else 'groups'}"
        label = {
            ItemKind.NAME: "name",
            ItemKind.DESCRIPTION: "description",
            ItemKind.SHORT_DESCRIPTION: "short description",
        }
        return f"{label.get(self.kind, 'menu button')}{lang}"

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind)}
        if self.language:
            out["languageCode"] = self.language
        if self.kind is ItemKind.COMMANDS:
            scope = dict(self.scope)
            out["scope"] = {_CAMEL.get(k, k): v for k, v in scope.items()}
        if self.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
            out["forChannels"] = self.for_channels
        return out

    @classmethod
    def from_status(cls, raw: Any) -> Item | None:
        """An item as :meth:`to_status` wrote it (None for anything else: it is not trusted)."""
        if not isinstance(raw, Mapping):
            return None
        try:
            kind = ItemKind(str(raw.get("kind")))
        except ValueError:
            return None
        language = raw.get("languageCode") or ""
        if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
            return None
        scope: tuple[tuple[str, str | int], ...] = ()
        if kind is ItemKind.COMMANDS:
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
            language=language if kind not in _WITHOUT_LANGUAGE else "",
            scope=scope,
            for_channels=bool(raw.get("forChannels"))
            if kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS
            else False,
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
        item = Item(ItemKind.COMMANDS, entry.language_code, scope)
        wanted[item] = tuple((c.command.strip(), c.description.strip()) for c in entry.commands)
    for name in profile.names:
        wanted[Item(ItemKind.NAME, name.language_code)] = name.name.strip()
    for text in profile.descriptions:
        wanted[Item(ItemKind.DESCRIPTION, text.language_code)] = text.description.strip()
    for short in profile.short_descriptions:
        wanted[Item(ItemKind.SHORT_DESCRIPTION, short.language_code)] = short.short_description.strip()
    if profile.menu_button is not None:
        button = profile.menu_button
        wanted[Item(ItemKind.MENU_BUTTON)] = (button.type, button.text or "", button.url or "")
    rights = profile.default_administrator_rights
    if rights is not None:
        for for_channels, granted in ((False, rights.groups), (True, rights.channels)):
            if granted is not None:
                wanted[Item(ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS, for_channels=for_channels)] = frozenset(
                    snake(k) for k, v in granted.items() if v
                )
    return wanted


# --- the Bot API calls of an item -------------------------------------------------------------


def _language(item: Item) -> dict[str, Any]:
    return {"language_code": item.language} if item.language else {}


_TEXT_CALLS: dict[ItemKind, tuple[str, str, str]] = {
    # kind: (getter, setter, field)
    ItemKind.NAME: ("getMyName", "setMyName", "name"),
    ItemKind.DESCRIPTION: ("getMyDescription", "setMyDescription", "description"),
    ItemKind.SHORT_DESCRIPTION: ("getMyShortDescription", "setMyShortDescription", "short_description"),
}


def read_call(item: Item) -> tuple[str, dict[str, Any]]:
    if item.kind is ItemKind.COMMANDS:
        return "getMyCommands", {"scope": dict(item.scope), **_language(item)}
    if item.kind is ItemKind.MENU_BUTTON:
        return "getChatMenuButton", {}
    if item.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
        return "getMyDefaultAdministratorRights", {"for_channels": item.for_channels}
    return _TEXT_CALLS[item.kind][0], _language(item)


def write_call(item: Item, value: Value) -> tuple[str, dict[str, Any]]:
    if item.kind is ItemKind.COMMANDS:
        commands = [{"command": c, "description": d} for c, d in value]
        return "setMyCommands", {"commands": commands, "scope": dict(item.scope), **_language(item)}
    if item.kind is ItemKind.MENU_BUTTON:
        type_, text, url = value
        button: dict[str, Any] = {"type": type_}
        if type_ == "web_app":
            button.update(text=text, web_app={"url": url})
        return "setChatMenuButton", {"menu_button": button}
    if item.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
        rights = dict.fromkeys(sorted(value), True)
        return "setMyDefaultAdministratorRights", {"rights": rights, "for_channels": item.for_channels}
    _, setter, field_ = _TEXT_CALLS[item.kind]
    return setter, {field_: value, **_language(item)}


def reset_call(item: Item) -> tuple[str, dict[str, Any]]:
    """What Telegram has without a setting: no commands, no text, the default button, no rights."""
    if item.kind is ItemKind.COMMANDS:
        return "deleteMyCommands", {"scope": dict(item.scope), **_language(item)}
    if item.kind is ItemKind.MENU_BUTTON:
        return "setChatMenuButton", {"menu_button": {"type": "default"}}
    if item.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
        return "setMyDefaultAdministratorRights", {"for_channels": item.for_channels}
    return write_call(item, "")


class UnexpectedAnswer(ValueError):
    pass


def parse_read(item: Item, result: Any) -> Value:
    """The value a getter answered, in the shape :func:`desired` uses."""
    if item.kind is ItemKind.COMMANDS:
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
    if item.kind is ItemKind.MENU_BUTTON:
        web_app = result.get("web_app")
        url = web_app.get("url", "") if isinstance(web_app, Mapping) else ""
        return (str(result.get("type", "")), str(result.get("text", "") or ""), str(url or ""))
    if item.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
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
    if item.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
        granted, offered = live
        return bool(wanted & offered == granted)
    if item.kind is ItemKind.MENU_BUTTON:
        # Only a web_app button has text and a URL to compare.
        return bool(live == wanted if wanted[0] == "web_app" else live[0] == wanted[0])
    return bool(wanted == live)


def after_write(item: Item, wanted: Value, live: Value | None) -> Value:
    """What a read would answer right after a successful write of ``wanted``."""
    if item.kind is ItemKind.DEFAULT_ADMINISTRATOR_RIGHTS:
        offered = live[1] if live is not None else wanted
        return (wanted & offered, offered)
    return wanted
