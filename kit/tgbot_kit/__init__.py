"""What the three programs (operator, sidecar, emulator) share; it imports none of them."""

from .cli import invalid_settings, parse, parse_or_exit, problems
from .logs import setup_logging
from .types import (
    LOG_LEVELS,
    CommaList,
    Duration,
    ListenAddress,
    LogLevel,
    Metavar,
    format_duration,
    parse_duration,
    split_commas,
    split_host_port,
)

__all__ = [
    "LOG_LEVELS",
    "CommaList",
    "Duration",
    "ListenAddress",
    "LogLevel",
    "Metavar",
    "format_duration",
    "invalid_settings",
    "parse",
    "parse_duration",
    "parse_or_exit",
    "problems",
    "setup_logging",
    "split_commas",
    "split_host_port",
]
