"""A bot's profile as BotFather and setMy* keep it: commands, names, descriptions, menu button.

Commands are kept per (scope, language), texts per language, menu buttons per
private chat (None = the bot's default) and default administrator rights per
audience (groups / channels). Reads answer exactly what was set for that key, as
getMyCommands does; only getMyName falls back to the bot's name for the default
language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A scope as a hashable key: (type, chat_id or None, user_id or None).
ScopeKey = tuple[str, str | None, int | None]
DEFAULT_SCOPE: ScopeKey = ("default", None, None)

DEFAULT_MENU_BUTTON: dict[str, Any] = {"type": "default"}

# Every right getMyDefaultAdministratorRights reports, per audience.
COMMON_RIGHTS = (
    "can_manage_chat",
    "can_change_info",
    "can_delete_messages",
    "can_invite_users",
    "can_restrict_members",
    "can_promote_members",
    "can_manage_video_chats",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
    "is_anonymous",
)
CHANNEL_RIGHTS = ("can_post_messages", "can_edit_messages", "can_manage_direct_messages")
GROUP_RIGHTS = ("can_pin_messages", "can_manage_topics", "can_manage_tags")
ALL_RIGHTS = frozenset(COMMON_RIGHTS + CHANNEL_RIGHTS + GROUP_RIGHTS)


def scope_view(key: ScopeKey) -> dict[str, Any]:
    kind, chat_id, user_id = key
    out: dict[str, Any] = {"type": kind}
    if chat_id is not None:
        out["chat_id"] = int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
    if user_id is not None:
        out["user_id"] = user_id
    return out


@dataclass
class BotProfile:
    commands: dict[tuple[ScopeKey, str], list[dict[str, str]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    short_descriptions: dict[str, str] = field(default_factory=dict)
    menu_buttons: dict[int | None, dict[str, Any]] = field(default_factory=dict)
    # for_channels -> the rights that were set (only True ones are kept).
    admin_rights: dict[bool, frozenset[str]] = field(default_factory=dict)

    def set_text(self, table: dict[str, str], language: str, value: str) -> None:
        """An empty value removes the dedicated text for that language."""
        if value:
            table[language] = value
        else:
            table.pop(language, None)

    def menu_button(self, chat_id: int | None) -> dict[str, Any]:
        if chat_id is not None and chat_id in self.menu_buttons:
            return dict(self.menu_buttons[chat_id])
        return dict(self.menu_buttons.get(None, DEFAULT_MENU_BUTTON))

    def set_menu_button(self, chat_id: int | None, button: dict[str, Any]) -> None:
        if button.get("type") == "default":
            # A chat's "default" means "use the bot's"; the bot's means Telegram's default.
            self.menu_buttons.pop(chat_id, None)
        else:
            self.menu_buttons[chat_id] = button

    def rights_view(self, for_channels: bool) -> dict[str, bool]:
        granted = self.admin_rights.get(for_channels, frozenset())
        names = COMMON_RIGHTS + (CHANNEL_RIGHTS if for_channels else GROUP_RIGHTS)
        return {name: name in granted for name in names}

    def view(self) -> dict[str, Any]:
        """The whole profile for the control API."""
        return {
            "commands": [
                {"scope": scope_view(scope), "language_code": language, "commands": commands}
                for (scope, language), commands in self.commands.items()
            ],
            "names": dict(self.names),
            "descriptions": dict(self.descriptions),
            "short_descriptions": dict(self.short_descriptions),
            "menu_buttons": {
                "default": self.menu_button(None),
                "chats": {str(k): v for k, v in self.menu_buttons.items() if k is not None},
            },
            "default_administrator_rights": {
                "groups": self.rights_view(False),
                "channels": self.rights_view(True),
            },
        }
