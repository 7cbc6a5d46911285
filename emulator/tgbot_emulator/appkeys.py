"""Typed application state shared by the Bot API and control routes."""

from __future__ import annotations

from aiohttp import web

from .config import EmulatorConfig
from .ratelimit import TokenBucket
from .state import EmulatorState

STATE = web.AppKey("state", EmulatorState)
CONFIG = web.AppKey("config", EmulatorConfig)
GLOBAL_LIMIT = web.AppKey("global_limit", TokenBucket)
