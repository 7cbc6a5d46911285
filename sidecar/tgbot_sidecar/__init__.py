"""The webhook sidecar: Telegram -> (secret token, IP ranges, dedup) -> the bot's dispatcher.

Run it as ``tgbot-sidecar`` (see ``--help`` and docs/sidecar.md) or embed :class:`Sidecar`.
"""

from .addresses import NetworkSet, client_address, normalize, parse_address
from .app import Sidecar, listen_socket
from .dedup import Deduplicator
from .gateway import Gateway
from .http1 import HttpError, RequestHead, RequestParser, parse_request_head
from .metrics import SidecarMetrics
from .settings import TELEGRAM_NETWORKS, Settings
from .target import UpstreamTarget
from .tlsreload import ReloadingTLS
from .tokens import TokenStore
from .upstream import UpstreamPool, UpstreamResult

__all__ = [
    "TELEGRAM_NETWORKS",
    "Deduplicator",
    "Gateway",
    "HttpError",
    "NetworkSet",
    "ReloadingTLS",
    "RequestHead",
    "RequestParser",
    "Settings",
    "Sidecar",
    "SidecarMetrics",
    "TokenStore",
    "UpstreamPool",
    "UpstreamResult",
    "UpstreamTarget",
    "client_address",
    "listen_socket",
    "normalize",
    "parse_address",
    "parse_request_head",
]
