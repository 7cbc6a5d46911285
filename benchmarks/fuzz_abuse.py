"""The abusive clients of the fuzz, all at once: slow heads without a token, slow bodies, trailer
drips, connections that send nothing, and clients that pipeline requests but never read the
answers. Each reconnects whenever the sidecar closes it. Meanwhile the sidecar's RSS is sampled and
a valid update is sent every half second: RSS must stay flat and every valid update answered 200.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from .fuzz_cases import ALLOWED_V4, IDS, TOKEN_HEAD, Case
from .fuzz_checks import exchange
from .procstat import rss_bytes
from .updates import update

ABUSE_KINDS = ("slow-head", "slow-body", "trailer-drip", "silent", "non-reader")
_TOKEN_HEAD = TOKEN_HEAD.encode()
# Answered at once (400, kept alive) without the upstream: a pipeline of these makes answers as
# fast as the client sends - the client that never reads them would fill the sidecar's buffer.
_PIPELINED = (_TOKEN_HEAD + b"Content-Length: 2\r\n\r\n{}") * 500
_DRIPS = {
    "slow-head": (b"POST /webhook HTTP/1.1\r\nX-Slow: ", b"a"),
    "slow-body": (_TOKEN_HEAD + b"Content-Length: 60000\r\n\r\n{", b" "),
    "trailer-drip": (_TOKEN_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: ", b"a"),
    "silent": (b"", b""),
}


@dataclass
class Abuse:
    connections: collections.Counter[str] = field(default_factory=collections.Counter)
    closed_by_sidecar: collections.Counter[str] = field(default_factory=collections.Counter)
    rss_mb: list[float] = field(default_factory=list)
    valid_sent: int = 0
    valid_answered: list[int] = field(default_factory=list)


async def _abuser(port: int, kind: str, stop: asyncio.Event, tally: Abuse) -> None:
    """One abusive client; it reconnects whenever the sidecar closes it, until ``stop``."""
    while not stop.is_set():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if kind == "non-reader":  # small buffers: the kernel holds little, the sidecar would hold it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError:
            sock.close()
            await asyncio.sleep(0.2)
            continue
        tally.connections[kind] += 1
        try:
            if kind == "non-reader":
                while not stop.is_set():
                    writer.write(_PIPELINED)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(writer.drain(), 0.5)
            else:
                first, drip = _DRIPS[kind]
                writer.write(first)
                while not stop.is_set():
                    if drip:
                        writer.write(drip)
                        await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        # Anything but a timeout - an answer (408) or the end - means the sidecar
                        # closed it: only the sidecar ends these.
                        await asyncio.wait_for(reader.read(65536), 0.1)
                        if reader.at_eof():
                            raise ConnectionResetError
        except (ConnectionError, OSError):
            tally.closed_by_sidecar[kind] += 1
            await asyncio.sleep(0.05)
        finally:
            writer.transport.abort()


async def _watch(port: int, pid: int, stop: asyncio.Event, tally: Abuse) -> None:
    """Every half second: the sidecar's RSS, and a valid update that must be answered."""
    while not stop.is_set():
        tally.rss_mb.append(rss_bytes(pid) / 2**20)
        body = json.dumps(update(IDS.next())).encode()
        raw = _TOKEN_HEAD + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        tally.valid_sent += 1
        statuses = await asyncio.to_thread(exchange, port, Case(raw, ALLOWED_V4), 10.0)
        tally.valid_answered.append(statuses[0] if statuses else 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def run_abusers(port: int, pid: int, abusers: int, seconds: float) -> Abuse:
    """``abusers`` clients of all kinds for ``seconds``, the watch beside them."""
    tally = Abuse()
    stop = asyncio.Event()
    tally.rss_mb.append(rss_bytes(pid) / 2**20)
    tasks = [asyncio.ensure_future(_abuser(port, ABUSE_KINDS[i % len(ABUSE_KINDS)], stop, tally))
             for i in range(abusers)]  # fmt: skip
    watcher = asyncio.ensure_future(_watch(port, pid, stop, tally))
    await asyncio.sleep(seconds)
    stop.set()
    await watcher
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally


def abuse_result(tally: Abuse, max_growth_mb: float) -> dict[str, Any]:
    base, peak = tally.rss_mb[0], max(tally.rss_mb)
    answered = [s for s in tally.valid_answered if s == 200]
    return {
        "abusers_by_kind": dict(tally.connections),
        "abusers_closed_by_sidecar": dict(tally.closed_by_sidecar),
        "rss_start_mb": round(base, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_growth_mb": round(peak - base, 1),
        "valid_sent": tally.valid_sent,
        "valid_answered_200": len(answered),
        "valid_statuses": dict(collections.Counter(tally.valid_answered)),
        "abuse_ok": bool(tally.valid_sent)
        and len(answered) == tally.valid_sent
        and peak - base <= max_growth_mb,
    }
