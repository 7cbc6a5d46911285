"""The webhook sidecar: Telegram -> (secret token, IP ranges, dedup) -> the bot's dispatcher.

Run it as ``tgbot-sidecar`` (see ``--help`` and docs/sidecar.md) or embed :class:`Sidecar`
with its :class:`Settings`. That is the public API; the modules behind it (the HTTP/1.1
parser, the gateway, the upstream pool...) are internals, imported from their own modules.
"""

from .app import Sidecar
from .settings import Settings

__all__ = ["Settings", "Sidecar"]
