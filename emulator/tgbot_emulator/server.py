"""EmulatorServer: the Bot API emulator as an async context manager."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from types import TracebackType

from aiohttp import web

from . import api, control
from .access_log import RedactingAccessLogger
from .appkeys import CONFIG, GLOBAL_LIMIT, STATE
from .config import EmulatorConfig
from .delivery import DeliveryManager
from .params import Params
from .ratelimit import TokenBucket
from .replies import execute_reply
from .state import Bot, EmulatorState

log = logging.getLogger(__name__)

DELIVERY = web.AppKey("delivery", DeliveryManager)
MAX_BODY_BYTES = 50 * 1024 * 1024


def build_app(config: EmulatorConfig, state: EmulatorState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app[CONFIG] = config
    if config.global_rate_limit_per_second is not None:
        app[GLOBAL_LIMIT] = TokenBucket(config.global_rate_limit_per_second)
    control.add_routes(app)
    api.add_routes(app)
    app.cleanup_ctx.append(_delivery_ctx)
    return app


async def _delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    state, config = app[STATE], app[CONFIG]

    async def on_reply(bot: Bot, params: Params, update_id: int) -> None:
        await execute_reply(state, config, bot, params, update_id)

    manager = DeliveryManager(state, config, on_reply)
    await manager.start()
    app[DELIVERY] = manager
    try:
        yield
    finally:
        await manager.stop()


class EmulatorServer:
    """Serve the Bot API and the control API on config.host:config.port (0 = any free port)."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState()
        for spec in self.config.bots:
            self.state.add_bot(spec.token, spec.username, spec.first_name)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        elif host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        app = build_app(self.config, self.state)
        runner = web.AppRunner(app, access_log_class=RedactingAccessLogger, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        # runner.addresses holds the real bound address, which matters when port is 0.
        self._port = int(runner.addresses[0][1])
        log.info("tgbot-emulator listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
