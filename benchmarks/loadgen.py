"""A load generator in its own process: keep-alive HTTP/1.1 POSTs of Updates with the secret header.

Closed loop (``--connections N``: each connection sends its next request as soon as the answer
arrives, like wrk) or open loop (``--rate R``: requests are due at fixed times whatever the
server does; latency counts from the due time, so a stalled server is not hidden - what wrk2
does). Prints one JSON object on stdout. A raw asyncio protocol keeps its own CPU low.

    python -m benchmarks.loadgen --url http://127.0.0.1:8443/webhook --connections 40 --duration 5
    python -m benchmarks.loadgen --url ... --rate 1500 --connections 40 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .report import percentile
from .updates import HEADER, SECRET_TOKEN, template


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        elapsed = max(self.ended - self.started, 1e-9)
        return {
            "requests": len(lat),
            "seconds": elapsed,
            "rps": len(lat) / elapsed,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "non_2xx": sum(v for k, v in self.statuses.items() if not 200 <= k < 300),
            "latency_ms": {
                name: percentile(lat, q) * 1000
                for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
            },
        }


class Requests:
    """Request bytes with unique update_ids (the sidecar deduplicates them)."""

    def __init__(self, host: str, path: str, first_id: int, secret: str) -> None:
        self.head, self.tail = template()
        self.prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\n{HEADER}: {secret}\r\n"
        ).encode()
        self.next_id = first_id

    def next(self) -> bytes:
        self.next_id += 1
        body = self.head + str(self.next_id).encode() + self.tail
        return self.prefix + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


class ClientProtocol(asyncio.Protocol):
    """One keep-alive connection; ``send`` returns a future of the status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        assert self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        status = int(head.split(" ", 2)[1])
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)
        if "connection: close" in head.lower() and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))
        if not self.lost.done():
            self.lost.set_result(None)


class Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def connect(self) -> ClientProtocol:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(ClientProtocol, self.host, self.port)
        return protocol


async def one(pool: Pool, conn: ClientProtocol | None, data: bytes) -> tuple[ClientProtocol | None, int]:
    """Send on ``conn`` (reconnecting if it is closed); status 0 = transport error."""
    if conn is None or conn.transport is None:
        conn = await pool.connect()
    try:
        return conn, await conn.send(data)
    except ConnectionError:
        return None, 0


async def closed_loop(
    pool: Pool, requests: Requests, connections: int, duration: float, results: Results
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration

    async def worker() -> None:
        conn: ClientProtocol | None = None
        while loop.time() < deadline:
            t0 = time.perf_counter()
            try:
                conn, status = await one(pool, conn, requests.next())
            except OSError:
                conn, status = None, 0
                await asyncio.sleep(0.01)
            if status:
                results.latencies.append(time.perf_counter() - t0)
                results.statuses[status] += 1
            else:
                results.errors += 1

    results.started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    results.ended = time.perf_counter()


async def open_loop(
    pool: Pool, requests: Requests, connections: int, rate: float, duration: float, results: Results
) -> None:
    """Requests due every 1/rate s; at most ``connections`` in flight, the rest queue (and wait)."""
    idle: asyncio.Queue[ClientProtocol | None] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(None)
    total = int(rate * duration)
    start = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()

    async def fire(due: float) -> None:
        conn = await idle.get()
        try:
            conn, status = await one(pool, conn, requests.next())
        except OSError:
            conn, status = None, 0
        idle.put_nowait(conn)
        if status:
            results.latencies.append(time.perf_counter() - due)
            results.statuses[status] += 1
        else:
            results.errors += 1

    results.started = start
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due_count = min(total, int((now - start) * rate) + 1)
        while sent < due_count:
            task = asyncio.create_task(fire(start + sent / rate))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(min(0.001, max(0.0, start + sent / rate - time.perf_counter())))
    await asyncio.gather(*pending)
    results.ended = time.perf_counter()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    pool = Pool(url.hostname or "127.0.0.1", url.port or 80)
    requests = Requests(url.netloc, url.path or "/", args.first_update_id, args.secret)
    results = Results()
    if args.rate:
        await open_loop(pool, requests, args.connections, args.rate, args.duration, results)
    else:
        await closed_loop(pool, requests, args.connections, args.duration, results)
    out = results.as_dict()
    out.update(mode="open" if args.rate else "closed", connections=args.connections, target_rate=args.rate)
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s (open loop); 0: closed loop")
    parser.add_argument("--secret", default=SECRET_TOKEN)
    parser.add_argument("--first-update-id", type=int, default=1)
    parser.add_argument("--no-uvloop", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.no_uvloop:
        out = asyncio.run(run(args))
    else:
        import uvloop

        out = uvloop.run(run(args))
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
