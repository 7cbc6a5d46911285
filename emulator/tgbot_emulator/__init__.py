"""The Telegram Bot API emulator: setWebhook & co, webhook delivery, and a control API."""

from .client import EmulatorClient, EmulatorClientError, EmulatorTimeoutError
from .config import BotSpec, EmulatorConfig
from .errors import ApiError
from .params import UploadedFile
from .redact import redact_token
from .server import EmulatorServer, build_app
from .state import EmulatorState
from .updates import DEFAULT_UPDATE_TYPES, UPDATE_TYPES

__all__ = [
    "DEFAULT_UPDATE_TYPES",
    "UPDATE_TYPES",
    "ApiError",
    "BotSpec",
    "EmulatorClient",
    "EmulatorClientError",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "EmulatorTimeoutError",
    "UploadedFile",
    "build_app",
    "redact_token",
]
