"""An aiohttp access logger that never writes a bot token."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .redact import redact_path


class RedactingAccessLogger(AbstractAccessLogger):
    # Paths are /bot<token>/<method>: the default access log would print every token.
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            redact_path(request.path),
            response.status,
            time * 1000,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(20)
