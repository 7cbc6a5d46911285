"""setMyCommands & co.: the bot's profile, validated with the Bot API server's rules and texts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from .context import CallContext, Handler, MethodResult
from .errors import ApiError, bad_request
from .params import Params, get_bool, get_json, get_str
from .profile import ALL_RIGHTS, DEFAULT_SCOPE, BotProfile, ScopeKey

MAX_COMMANDS = 100
MAX_COMMAND_LENGTH = 32
MAX_COMMAND_DESCRIPTION = 256
MAX_NAME = 64
MAX_DESCRIPTION = 512
MAX_SHORT_DESCRIPTION = 120
_COMMAND_CHARS = re.compile(r"[a-z0-9_]+")
_LANGUAGE = re.compile(r"[a-z]{2}")
_SCOPES_WITHOUT_CHAT = frozenset(
    {"default", "all_private_chats", "all_group_chats", "all_chat_administrators"}
)
_SCOPES_WITH_CHAT = frozenset({"chat", "chat_administrators", "chat_member"})


def _json_param(params: Params, name: str, what: str) -> Any:
    try:
        return get_json(params, name)
    except ApiError:
        raise bad_request(f"can't parse {what} JSON object") from None


def language_code(params: Params) -> str:
    value = get_str(params, "language_code") or ""
    if value and not _LANGUAGE.fullmatch(value):
        raise bad_request("invalid language code specified")
    return value


def command_scope(ctx: CallContext, params: Params) -> ScopeKey:
    if params.get("scope") in (None, ""):
        return DEFAULT_SCOPE
    value = _json_param(params, "scope", "BotCommandScope")
    try:
        return _scope_key(ctx, value)
    except ValueError as exc:
        raise bad_request(f"can't parse BotCommandScope: {exc}") from None


def _scope_key(ctx: CallContext, value: Any) -> ScopeKey:
    if not isinstance(value, dict):
        raise ValueError("BotCommandScope must be an Object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise ValueError('Can\'t find field "type"')
    if kind in _SCOPES_WITHOUT_CHAT:
        return (kind, None, None)
    if kind not in _SCOPES_WITH_CHAT:
        raise ValueError("Unsupported type specified")
    if "chat_id" not in value:
        raise ValueError('Can\'t find field "chat_id"')
    chat = str(value["chat_id"]).strip()
    if not chat:
        raise ValueError("Empty chat_id specified")
    if chat.startswith("@"):
        known = {str(c.get("username", "")).lower(): c["id"] for c in ctx.bot.chats.values()}
        if chat[1:].lower() not in known:
            raise bad_request("chat not found")
        chat = str(known[chat[1:].lower()])
    elif not chat.lstrip("-").isdigit():
        raise bad_request("chat not found")
    chat = str(int(chat))
    if kind != "chat_member":
        return (kind, chat, None)
    user = value.get("user_id")
    if user is None:
        raise ValueError('Can\'t find field "user_id"')
    if not isinstance(user, int) or isinstance(user, bool) or user <= 0:
        raise ValueError("Invalid user_id specified")
    return (kind, chat, user)


def _commands(params: Params) -> list[dict[str, str]]:
    if params.get("commands") in (None, ""):
        return []
    value = _json_param(params, "commands", "commands")
    if not isinstance(value, list):
        raise bad_request("expected an Array of BotCommand")
    commands = [_command(item) for item in value]
    if len(commands) > MAX_COMMANDS:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    return commands


def _command(item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        raise bad_request("can't parse BotCommand: expected an Object")
    for field in ("command", "description"):
        if not isinstance(item.get(field), str):
            raise bad_request(f"can't parse BotCommand: Can't find field \"{field}\"")
    command = item["command"].strip().removeprefix("/")
    description = item["description"].strip()
    if not command:
        raise bad_request("command must be non-empty")
    if len(command) > MAX_COMMAND_LENGTH:
        raise bad_request(f"command length must not exceed {MAX_COMMAND_LENGTH}")
    if not description:
        raise bad_request("command description must be non-empty")
    if len(description) > MAX_COMMAND_DESCRIPTION:
        raise bad_request(f"command description length must not exceed {MAX_COMMAND_DESCRIPTION}")
    if not _COMMAND_CHARS.fullmatch(command):
        raise bad_request("BOT_COMMAND_INVALID")
    return {"command": command, "description": description}


async def set_my_commands(ctx: CallContext, params: Params) -> MethodResult:
    commands = _commands(params)
    key = (command_scope(ctx, params), language_code(params))
    if commands:
        ctx.bot.profile.commands[key] = commands
    else:
        ctx.bot.profile.commands.pop(key, None)
    ctx.state.notify(ctx.bot)
    return MethodResult(True)


async def get_my_commands(ctx: CallContext, params: Params) -> MethodResult:
    key = (command_scope(ctx, params), language_code(params))
    return MethodResult([dict(c) for c in ctx.bot.profile.commands.get(key, [])])


async def delete_my_commands(ctx: CallContext, params: Params) -> MethodResult:
    key = (command_scope(ctx, params), language_code(params))
    ctx.bot.profile.commands.pop(key, None)
    ctx.state.notify(ctx.bot)
    return MethodResult(True)


class ProfileText(NamedTuple):
    """One of the bot's per-language texts: ``setMy<method>`` stores it, ``getMy<method>`` reads it."""

    method: str  # Name -> setMyName / getMyName
    field: str  # the parameter of setMy*, and the key of getMy*'s answer
    limit: int
    what: str  # how Telegram's error text names it
    table: Callable[[BotProfile], dict[str, str]]
    #: getMyName without a language answers the bot's first name until one is set.
    first_name_by_default: bool = False


PROFILE_TEXTS = (
    ProfileText("Name", "name", MAX_NAME, "bot name", lambda p: p.names, first_name_by_default=True),
    ProfileText("Description", "description", MAX_DESCRIPTION, "description", lambda p: p.descriptions),
    ProfileText(
        "ShortDescription",
        "short_description",
        MAX_SHORT_DESCRIPTION,
        "short description",
        lambda p: p.short_descriptions,
    ),
)


def _text_methods(text: ProfileText) -> dict[str, Handler]:
    async def set_text(ctx: CallContext, params: Params) -> MethodResult:
        language = language_code(params)
        value = (get_str(params, text.field) or "").strip()
        if len(value) > text.limit:
            raise bad_request(f"{text.what} is too long (at most {text.limit} characters)")
        ctx.bot.profile.set_text(text.table(ctx.bot.profile), language, value)
        ctx.state.notify(ctx.bot)
        return MethodResult(True)

    async def get_text(ctx: CallContext, params: Params) -> MethodResult:
        language = language_code(params)
        fallback = ctx.bot.first_name if text.first_name_by_default and language == "" else ""
        return MethodResult({text.field: text.table(ctx.bot.profile).get(language, fallback)})

    return {f"setMy{text.method}": set_text, f"getMy{text.method}": get_text}


#: setMyName, getMyName, setMyDescription... (Bot API method name -> handler).
TEXT_METHODS: dict[str, Handler] = {
    name: handler for text in PROFILE_TEXTS for name, handler in _text_methods(text).items()
}


def _menu_chat(params: Params) -> int | None:
    """setChatMenuButton/getChatMenuButton: a private chat (a user id), or None for the bot's default."""
    if "chat_id" not in params:
        return None
    raw = get_str(params, "chat_id") or ""
    value = int(raw) if raw.strip().lstrip("-").isdigit() else 0
    if value <= 0:
        raise bad_request("invalid chat_id specified")
    return value


def _menu_button(params: Params) -> dict[str, Any]:
    if params.get("menu_button") in (None, ""):
        return {"type": "default"}
    value = _json_param(params, "menu_button", "menu button")
    if not isinstance(value, dict):
        raise bad_request("can't parse menu button: MenuButton must be an Object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise bad_request("can't parse menu button: Can't find field \"type\"")
    if kind in ("default", "commands"):
        return {"type": kind}
    if kind != "web_app":
        raise bad_request("can't parse menu button: MenuButton has unsupported type")
    text, web_app = value.get("text"), value.get("web_app")
    if not isinstance(text, str):
        raise bad_request("can't parse menu button: Can't find field \"text\"")
    if not isinstance(web_app, dict) or not isinstance(web_app.get("url"), str):
        raise bad_request("can't parse menu button: Can't find field \"web_app\"")
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    if not web_app["url"].lower().startswith("https://") or len(web_app["url"]) <= len("https://"):
        raise bad_request("BUTTON_URL_INVALID")
    return {"type": "web_app", "text": text, "web_app": {"url": web_app["url"]}}


async def set_chat_menu_button(ctx: CallContext, params: Params) -> MethodResult:
    button = _menu_button(params)
    ctx.bot.profile.set_menu_button(_menu_chat(params), button)
    ctx.state.notify(ctx.bot)
    return MethodResult(True)


async def get_chat_menu_button(ctx: CallContext, params: Params) -> MethodResult:
    return MethodResult(ctx.bot.profile.menu_button(_menu_chat(params)))


# Rights a channel's or a group's administrator can't have (dropped, as Telegram drops them).
_NOT_FOR_CHANNELS = frozenset({"can_pin_messages", "can_manage_topics", "can_manage_tags", "is_anonymous"})
_NOT_FOR_GROUPS = frozenset({"can_post_messages", "can_edit_messages", "can_manage_direct_messages"})


async def set_my_default_administrator_rights(ctx: CallContext, params: Params) -> MethodResult:
    for_channels = get_bool(params, "for_channels")
    granted: set[str] = set()
    if params.get("rights") not in (None, ""):
        rights = _json_param(params, "rights", "ChatAdministratorRights")
        prefix = "can't parse ChatAdministratorRights"
        if not isinstance(rights, dict):
            raise bad_request(f"{prefix}: ChatAdministratorRights must be an Object")
        for name, value in rights.items():
            if name in ALL_RIGHTS and not isinstance(value, bool):
                raise bad_request(f'{prefix}: Field "{name}" must be of type Boolean')
            if name in ALL_RIGHTS and value:
                granted.add(name)
    granted -= _NOT_FOR_CHANNELS if for_channels else _NOT_FOR_GROUPS
    ctx.bot.profile.admin_rights[for_channels] = frozenset(granted)
    ctx.state.notify(ctx.bot)
    return MethodResult(True)


async def get_my_default_administrator_rights(ctx: CallContext, params: Params) -> MethodResult:
    return MethodResult(ctx.bot.profile.rights_view(get_bool(params, "for_channels")))
