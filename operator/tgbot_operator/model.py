"""Pydantic models of the TelegramBot spec (what the user asked for)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tgbot_kit import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


class SecretKeyRef(_Model):
    name: str
    key: str = "token"


class SecretRef(_Model):
    name: str


CertificateMode = Literal["None", "SelfSigned", "Secret"]


class CertificateSpec(_Model):
    mode: CertificateMode = "None"
    secret_ref: SecretRef | None = None


class WebhookSpec(_Model):
    url: str
    allowed_updates: tuple[str, ...] | None = None
    max_connections: int = Field(default=40, ge=1, le=100)
    drop_pending_updates: bool = False
    ip_address: str | None = None
    certificate: CertificateSpec = CertificateSpec()

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


class SecretTokenSpec(_Model):
    rotation_interval: Duration | None = None


DeletionPolicy = Literal["DeleteWebhook", "Keep"]


class TelegramBotSpec(_Model):
    token_secret_ref: SecretKeyRef
    bot_api_server: str | None = None
    webhook: WebhookSpec
    secret_token: SecretTokenSpec = SecretTokenSpec()
    deletion_policy: DeletionPolicy = "DeleteWebhook"
    profile: ProfileSpec | None = None

    @classmethod
    def from_body(cls, spec: Any) -> TelegramBotSpec:
        """Validate a (possibly kopf-wrapped) spec mapping."""
        return cls.model_validate(plain(spec))


def plain(value: Any) -> Any:
    """Turn kopf's read-only mapping views into plain dicts and lists."""
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if hasattr(value, "items"):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# --- spec.profile (profile.py applies it) ----------------------------------------------------

ScopeType = Literal[
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
]


class CommandScope(_Model):
    type: ScopeType = "default"
    chat_id: int | None = None
    user_id: int | None = None


class BotCommandSpec(_Model):
    command: str
    description: str


class CommandsEntry(_Model):
    scope: CommandScope = CommandScope()
    language_code: str = ""
    commands: tuple[BotCommandSpec, ...]


class NameEntry(_Model):
    language_code: str = ""
    name: str


class DescriptionEntry(_Model):
    language_code: str = ""
    description: str


class ShortDescriptionEntry(_Model):
    language_code: str = ""
    short_description: str


class MenuButtonSpec(_Model):
    type: Literal["default", "commands", "web_app"]
    text: str | None = None
    url: str | None = None


class DefaultAdministratorRightsSpec(_Model):
    groups: dict[str, bool] | None = None
    channels: dict[str, bool] | None = None


class ProfileSpec(_Model):
    commands: tuple[CommandsEntry, ...] = ()
    names: tuple[NameEntry, ...] = ()
    descriptions: tuple[DescriptionEntry, ...] = ()
    short_descriptions: tuple[ShortDescriptionEntry, ...] = ()
    menu_button: MenuButtonSpec | None = None
    default_administrator_rights: DefaultAdministratorRightsSpec | None = None
