"""The processes behind (or in place of) the hop, one subcommand each:

* ``aiogram``: an aiogram 3 dispatcher with a trivial echo handler (the answer is a webhook
  reply), behind ``SimpleRequestHandler(handle_in_background=False)``; with ``--secret`` and
  ``--ip-filter`` it is aiogram's documented stand-alone setup (secret token + ip_filter_middleware);
  with ``--record FILE`` every update_id is appended to FILE before answering (reliability runs);
* ``trivial``: a raw asyncio HTTP/1.1 responder answering ``200 {}``: an upstream that costs
  almost nothing, so a hop's own cost and throughput are visible;
* ``naive``: a naive forwarder, aiohttp ``web.Application`` + ``ClientSession`` (the 5th setup).

    python -m benchmarks.servers aiogram --unix /tmp/bot.sock
    python -m benchmarks.servers trivial --tcp 127.0.0.1:8081
    python -m benchmarks.servers naive --tcp 127.0.0.1:8443 --upstream-unix /tmp/bot.sock
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any

from .updates import HEADER, SECRET_TOKEN

BOT_TOKEN = "123456:BENCHMARK-not-a-real-token"

TRIVIAL_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class TrivialProtocol(asyncio.Protocol):
    """Answers every complete request (Content-Length framed) with ``200 {}``.

    With ``record`` set, each request is appended to it as a JSON line ``{"head", "body"}``
    (latin-1 text), so a fuzz run can check everything the sidecar forwarded.
    """

    record: IO[str] | None = None

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            lower = self.buffer[:end].lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17 : stop if stop >= 0 else end])
            if len(self.buffer) < end + 4 + length:
                return
            if self.record is not None:
                head, body = self.buffer[:end], self.buffer[end + 4 : end + 4 + length]
                line = {"head": head.decode("latin-1"), "body": body.decode("latin-1")}
                self.record.write(json.dumps(line) + "\n")
                self.record.flush()
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(TRIVIAL_ANSWER)


async def serve_trivial(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    if args.record:
        TrivialProtocol.record = open(args.record, "a")  # noqa: SIM115 - open for the process's life
    if args.unix:
        server = await loop.create_unix_server(TrivialProtocol, args.unix)
    else:
        host, port = args.tcp.rsplit(":", 1)
        server = await loop.create_server(TrivialProtocol, host, int(port), backlog=1024)
    async with server:
        await _until_signal()


def _aiogram_app(args: argparse.Namespace) -> Any:
    from aiogram import Bot, Dispatcher, F, Router
    from aiogram.methods import SendMessage
    from aiogram.types import Message
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, ip_filter_middleware, setup_application
    from aiogram.webhook.security import IPFilter
    from aiohttp import web

    router = Router()
    record_fd = os.open(args.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if args.record else None
    instance = os.getpid()

    @router.message(F.text)
    async def echo(message: Message, event_update: Any) -> SendMessage | None:
        if record_fd is not None:
            # One write(2) per update: survives a SIGKILL right after (the page cache has it).
            os.write(record_fd, f"{event_update.update_id} {instance}\n".encode())
        return None if args.no_reply else message.answer(message.text or "")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    bot = Bot(BOT_TOKEN)
    middlewares: list[Any] = [ip_filter_middleware(IPFilter(args.ip_filter))] if args.ip_filter else []
    app = web.Application(middlewares=middlewares)
    SimpleRequestHandler(
        dispatcher=dispatcher, bot=bot, handle_in_background=False, secret_token=args.secret or None
    ).register(app, path="/webhook")
    setup_application(app, dispatcher, bot=bot)
    return app


def _naive_app(args: argparse.Namespace) -> Any:
    import aiohttp
    from aiohttp import web

    secret = args.secret
    upstream = args.upstream

    async def start_session(app: web.Application) -> None:
        connector = aiohttp.UnixConnector(path=args.upstream_unix, limit=0) if args.upstream_unix else None
        app["session"] = aiohttp.ClientSession(connector=connector)

    async def close_session(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        if request.headers.get(HEADER) != secret:
            return web.Response(status=401)
        body = await request.read()
        async with request.app["session"].post(
            upstream, data=body, headers={"Content-Type": "application/json"}
        ) as answer:
            payload = await answer.read()
            return web.Response(
                body=payload, status=answer.status, headers={"Content-Type": answer.content_type}
            )

    app = web.Application()
    app.router.add_post("/webhook", forward)
    app.on_startup.append(start_session)
    app.on_cleanup.append(close_session)
    return app


async def serve_aiohttp(make_app: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> None:
    from aiohttp import web

    runner = web.AppRunner(make_app(args), access_log=None, handle_signals=False)
    await runner.setup()
    if args.unix:
        site: web.BaseSite = web.UnixSite(runner, args.unix)
    else:
        host, port = args.tcp.rsplit(":", 1)
        site = web.TCPSite(runner, host, int(port), backlog=1024)
    await site.start()
    try:
        await _until_signal()
    finally:
        await runner.cleanup()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    parser.add_argument("kind", choices=["aiogram", "trivial", "naive"])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix", help="listen on this Unix socket")
    where.add_argument("--tcp", help="listen on HOST:PORT")
    parser.add_argument("--secret", default="", help="aiogram: secret_token; naive: header to require")
    parser.add_argument("--ip-filter", action="append", help="aiogram: ip_filter_middleware address (repeat)")
    parser.add_argument(
        "--record", help="aiogram: append '<update_id> <pid>' lines; trivial: each request as JSON"
    )
    parser.add_argument("--no-reply", action="store_true", help="aiogram: answer {} (no webhook reply)")
    parser.add_argument("--upstream", default="http://bot/webhook", help="naive: where to forward")
    parser.add_argument("--upstream-unix", help="naive: forward over this Unix socket")
    parser.add_argument("--no-uvloop", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.unix:
        Path(args.unix).unlink(missing_ok=True)
    runners: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "trivial": lambda: serve_trivial(args),
        "aiogram": lambda: serve_aiohttp(_aiogram_app, args),
        "naive": lambda: serve_aiohttp(_naive_app, args),
    }
    if args.kind == "naive" and not args.secret:
        args.secret = SECRET_TOKEN
    if args.no_uvloop:
        asyncio.run(runners[args.kind]())
    else:
        import uvloop

        uvloop.run(runners[args.kind]())


if __name__ == "__main__":
    main()
