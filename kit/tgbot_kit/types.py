"""Value types the programs' settings share, each with one grammar and one error message.

``Duration``: seconds as a float, written ``300s``, ``5m``, ``1h30m``, ``250ms``, ``1d`` or a plain
number of seconds. ``ListenAddress``: ``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT`` (no host:
every IPv4 interface, 0.0.0.0). ``LogLevel``: debug, info, warning, error, critical in any case.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from annotated_types import Ge
from pydantic import BeforeValidator, GetCoreSchemaHandler
from pydantic_core import core_schema
from pydantic_settings import NoDecode


@dataclass(frozen=True)
class Metavar:
    """How ``--help`` names a field's value (``Annotated[str, Metavar("URL")]``)."""

    text: str


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | float | int | timedelta) -> timedelta:
    """Parse ``720h``, ``1h30m``, ``90s``, ``250ms``, ``1d`` or a plain number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a duration: {value!r} (expected e.g. 300s, 5m, 1h30m or seconds)")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"not a duration: {value!r} (expected e.g. 300s, 5m, 1h30m or seconds)"
                ) from None
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {value!r} (must be finite)")
    return timedelta(seconds=seconds)


def format_duration(seconds: float) -> str:
    """``300.0`` -> ``300s``, ``31536000`` -> ``8760h``: how --help shows a default."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    return f"{seconds:g}s"


def _seconds(value: Any) -> float:
    return parse_duration(value).total_seconds()


#: A non-negative duration in seconds (a float: what asyncio's timeouts and sleeps take).
Duration = Annotated[float, BeforeValidator(_seconds), Ge(0), Metavar("DURATION")]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_LEVEL_ALIASES = {"warn": "warning", "fatal": "critical"}


def _level(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        return _LEVEL_ALIASES.get(text, text)
    return value


#: A logging level name, stored lower case (``logging`` takes it upper-cased).
LogLevel = Annotated[
    Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_level), Metavar("LEVEL")
]


def split_commas(value: Any) -> Any:
    """``"a, b"`` -> ``["a", "b"]``: how environment variables (and repeated flags) carry lists."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


#: A list given by a repeated flag (``--x a --x b``) or one comma separated variable (``X=a,b``).
CommaList = Annotated[list[str], NoDecode, BeforeValidator(split_commas)]


class ListenAddress(str):
    """``HOST:PORT`` as given (it compares equal to its text), with ``.host`` and ``.port`` parsed.

    IPv6 hosts need brackets (``[::]:8443``): ``::1:80`` could be read two ways.
    """

    metavar = "HOST:PORT"
    host: str
    port: int

    def __new__(cls, value: str) -> ListenAddress:
        text = value.strip()
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = "", text
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"not a listen address: {value!r} (expected HOST:PORT, port 0-65535)")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
            try:
                ipaddress.IPv6Address(host.split("%", 1)[0])
            except ValueError:
                raise ValueError(f"not an IPv6 address in {value!r}") from None
        elif ":" in host:
            raise ValueError(f"IPv6 hosts need brackets, as in [::]:8443, got {value!r}")
        self = super().__new__(cls, text)
        self.host = host or "0.0.0.0"
        self.port = int(port_text)
        return self

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(), serialization=core_schema.to_string_ser_schema()
        )


def split_host_port(value: str) -> tuple[str, int]:
    """``(host, port)`` of a listen address; ValueError when it is none."""
    address = value if isinstance(value, ListenAddress) else ListenAddress(value)
    return address.host, address.port
