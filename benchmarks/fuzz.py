"""Bad input: hypothesis-generated requests against the sidecar, an upstream that records all it gets.

Generated: valid updates and every way to spoil one - malformed JSON, wrong types, huge and
truncated bodies, chunked framing, odd header forms (case, padding, duplicates), wrong or
missing secret tokens, spoofed and malformed ``X-Forwarded-For`` (IPv4, IPv6, mapped forms)
from an allowed peer, a trusted proxy and an outsider, IPv6 clients - and raw malformed HTTP.

Checked for every request: no 500 and no 5xx but 501/505 (the upstream never fails here); a
request that must be refused is not forwarded; a request that must pass is answered 200 and
forwarded. Afterwards: everything the upstream got is a JSON object with an integer update_id
and no secret header, and the sidecar still runs.

Then abusive clients, all at once for ``--abuse-seconds``: slow heads without a token, slow
bodies, trailer drips, connections that send nothing, and clients that pipeline requests but
never read the answers. Each reconnects whenever the sidecar closes it. Meanwhile the sidecar's
RSS is sampled and a valid update is sent every half second: RSS must stay flat (growth under
``--max-rss-growth-mb``) and every valid update must be answered 200.

    .venv/bin/python -m benchmarks.fuzz [--examples 10000] [--abusers 400] [--abuse-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from . import report
from .processes import BIN, PYTHON, Group, free_port
from .procstat import rss_bytes
from .updates import SECRET_TOKEN, update

MAX_BODY = 64 * 1024
ALLOWED_V4, PROXY, OUTSIDER, ALLOWED_V6 = "127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"


@dataclass
class Case:
    raw: bytes
    source: str
    update_id: int | None = None
    must_forward: bool = False
    must_refuse: bool = False
    half_close: bool = False
    kind: str = ""


@dataclass
class Tally:
    sent: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    closed_by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    must_forward: list[int] = field(default_factory=list)
    must_refuse: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Ids:
    def __init__(self) -> None:
        self.n = 10**12

    def next(self) -> int:
        self.n += 1
        return self.n


IDS = Ids()

TOKEN_FORMS = {
    # form -> (header lines, token accepted?)
    "right": ([f"X-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}"], True),
    "lowercase-name": ([f"x-telegram-bot-api-secret-token: {SECRET_TOKEN}"], True),
    "padded": ([f"X-Telegram-Bot-Api-Secret-Token: \t {SECRET_TOKEN} \t"], True),
    "missing": ([], False),
    "empty": (["X-Telegram-Bot-Api-Secret-Token: "], False),
    "wrong": (["X-Telegram-Bot-Api-Secret-Token: guess"], False),
    "prefix": ([f"X-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN[:-1]}"], False),
    "longer": ([f"X-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}x"], False),
    "twice": ([f"X-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}"] * 2, False),
    "right-and-wrong": (
        [f"X-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}", "X-Telegram-Bot-Api-Secret-Token: x"],
        False,
    ),
}

# X-Forwarded-For values: (value, client allowed when the peer is the trusted proxy?) None = unsure.
XFF = {
    "127.0.0.1": True,
    "::ffff:127.0.0.1": True,
    "203.0.113.9": False,
    "127.0.0.1, 203.0.113.9": False,  # spoofed left entry: the rightmost untrusted one counts
    "203.0.113.9, 127.0.0.1": True,
    "127.0.0.1, 127.0.0.2": True,  # trusted hops are skipped
    "127.0.0.1:443": False,
    "[127.0.0.1]": False,
    "": False,
    "127.0.0.1,": False,
    " , ": False,
    "not-an-address": False,
    "2001:db8::1": False,
    "::1": None,
    "[::1]": None,
    "fe80::1%eth0": False,
    "::ffff:203.0.113.9": False,
    "999.1.1.1": False,
    "127.1": None,
    "0x7f.0.0.1": None,
}


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, int | None, bool, str]:
    """(body, update_id, is a valid update, kind)."""
    kind = draw(
        st.sampled_from(
            ["valid"] * 6
            + ["id-str", "id-float", "id-bool", "id-null", "id-missing", "id-big", "array", "scalar"]
            + ["truncated-json", "text", "bytes", "empty", "huge", "nested-deep", "bom", "nan"]
        )
    )
    uid = IDS.next()
    upd = update(uid, draw(st.integers(0, 999)))
    if kind == "valid":
        return json.dumps(upd).encode(), uid, True, kind
    if kind.startswith("id-"):
        value: Any = {
            "id-str": str(uid),
            "id-float": uid + 0.5,
            "id-bool": True,
            "id-null": None,
            "id-big": 10**40,
        }
        if kind == "id-missing":
            del upd["update_id"]
        elif kind == "id-big":
            upd["update_id"] = 10**40  # an integer still: the sidecar may pass it (the bot's problem)
            return json.dumps(upd).encode(), None, False, kind
        else:
            upd["update_id"] = value[kind]
        return json.dumps(upd).encode(), None, False, kind
    if kind == "array":
        return json.dumps([upd]).encode(), None, False, kind
    if kind == "scalar":
        return draw(st.sampled_from([b"1", b'"x"', b"null", b"true", b"12345"])), None, False, kind
    if kind == "truncated-json":
        text = json.dumps(upd).encode()
        # A fraction, not an index: the draws must not depend on the (external) update_id.
        return text[: draw(st.integers(0, 999)) * (len(text) - 1) // 999], None, False, kind
    if kind == "text":
        return draw(st.text(max_size=200)).encode(), None, False, kind
    if kind == "bytes":
        return draw(st.binary(max_size=300)), None, False, kind
    if kind == "empty":
        return b"", None, False, kind
    if kind == "huge":
        return (
            b'{"update_id":1,"x":"' + b"a" * (MAX_BODY + draw(st.integers(1, 10_000))) + b'"}',
            None,
            False,
            kind,
        )
    if kind == "nested-deep":
        depth = draw(st.integers(500, 5000))
        return b'{"update_id":1,"x":' + b"[" * depth + b"]" * depth + b"}", None, False, kind
    if kind == "bom":
        return b"\xef\xbb\xbf" + json.dumps(upd).encode(), None, None, kind  # type: ignore[return-value]
    return b'{"update_id":NaN}', None, False, kind


@st.composite
def requests(draw: st.DrawFn) -> Case:
    body, uid, valid, kind = draw(bodies())
    token_form = draw(st.sampled_from(sorted(TOKEN_FORMS)))
    token_lines, token_ok = TOKEN_FORMS[token_form]
    source = draw(st.sampled_from([ALLOWED_V4, ALLOWED_V4, ALLOWED_V6, PROXY, PROXY, OUTSIDER]))
    xff_values = draw(st.lists(st.sampled_from(sorted(XFF)), max_size=2))
    address_ok: bool | None = source in (ALLOWED_V4, ALLOWED_V6)
    if source == PROXY:
        if not xff_values:
            address_ok = False
        elif len(xff_values) == 1:
            address_ok = XFF[xff_values[0]]
        else:
            address_ok = None
    elif source == OUTSIDER:
        address_ok = False
    path = draw(st.sampled_from(["/webhook"] * 8 + ["/webhook?x=1", "/other", "/webhook/", "/Webhook", "*"]))
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT", "post", "P0ST"]))
    framing = draw(
        st.sampled_from(["length"] * 6 + ["chunked", "chunked-bad", "truncated", "both", "conflict", "none"])
    )
    header_case = draw(st.sampled_from(["normal", "lower", "upper"]))
    extra = draw(
        st.lists(
            st.sampled_from(["X-Junk: a", "Expect: 100-continue", "Connection: close", "Accept: */*"]),
            max_size=2,
        )
    )

    def cased(name: str) -> str:
        return name.lower() if header_case == "lower" else name.upper() if header_case == "upper" else name

    lines = [
        f"{method} {path} HTTP/1.1",
        f"{cased('Host')}: example.org",
        f"{cased('Content-Type')}: application/json",
    ]
    lines += token_lines + [f"X-Forwarded-For: {v}" for v in xff_values] + extra
    half_close = False
    framing_ok = True
    if framing == "length":
        lines.append(f"{cased('Content-Length')}: {len(body)}")
        payload = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        cut = len(body) // 2
        parts = [p for p in (body[:cut], body[cut:]) if p]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    elif framing == "chunked-bad":
        lines.append("Transfer-Encoding: chunked")
        payload = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
        framing_ok = False
    elif framing == "truncated":
        lines.append(f"Content-Length: {len(body) + 10}")
        payload, half_close, framing_ok = body, True, False
    elif framing == "both":
        lines += [f"Content-Length: {len(body)}", "Transfer-Encoding: chunked"]
        payload, framing_ok = body, False
    elif framing == "conflict":
        lines += [f"Content-Length: {len(body)}", f"Content-Length: {len(body) + 1}"]
        payload, framing_ok = body, False
    else:
        payload, framing_ok = body, not body  # no length: an empty body
        half_close = True
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    good_target = method == "POST" and path in ("/webhook", "/webhook?x=1")
    must_forward = bool(valid and token_ok and address_ok and good_target and framing_ok and uid is not None)
    must_refuse = (not token_ok) or address_ok is False or not good_target or valid is False
    return Case(raw, source, uid, must_forward, must_refuse and uid is not None, half_close, kind)


@st.composite
def garbage(draw: st.DrawFn) -> Case:
    """Raw malformed HTTP."""
    ok_head = f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}\r\n"
    body = json.dumps(update(IDS.next())).encode()
    cl = f"Content-Length: {len(body)}\r\n"
    kind = draw(
        st.sampled_from(
            ["bytes", "request-line", "no-colon", "space-before-colon", "obs-fold", "nul", "big-head",
             "many-headers", "version", "lf-only", "bad-length", "negative-length", "te-gzip",
             "pipelined-junk"]
        )
    )  # fmt: skip
    versions = st.sampled_from(["HTTP/2.0", "HTTP/0.9", "HTTP/1.1x", "http/1.1"])
    lines = [b"POST\r\n\r\n", b"POST  /webhook HTTP/1.1\r\n\r\n", b"\r\n\r\n",
             b"POST /webhook HTTP/1.1 extra\r\n\r\n", b"GET / FTP/1.0\r\n\r\n"]  # fmt: skip
    many = "".join(f"X-{i}: a\r\n" for i in range(120))
    heads = {
        "no-colon": ok_head + "Broken header\r\n" + cl,
        "space-before-colon": ok_head + "Content-Length : 5\r\n",
        "obs-fold": ok_head + "X-A: a\r\n  folded\r\n" + cl,
        "nul": ok_head + "X-A: a\x00b\r\n" + cl,
        "big-head": ok_head + "X-A: " + "a" * 17_000 + "\r\n" + cl,
        "many-headers": ok_head + many + cl,
        "bad-length": ok_head + "Content-Length: 12abc\r\n",
        "negative-length": ok_head + "Content-Length: -1\r\n",
        "pipelined-junk": ok_head + cl,
    }
    if kind == "bytes":
        raw = draw(st.binary(min_size=1, max_size=500))
    elif kind == "request-line":
        raw = draw(st.sampled_from(lines))
    elif kind == "version":
        raw = (ok_head.replace("HTTP/1.1", draw(versions)) + cl + "\r\n").encode() + body
    elif kind == "lf-only":
        raw = (ok_head + cl + "\r\n").replace("\r\n", "\n").encode() + body
    elif kind == "te-gzip":
        raw = (ok_head + "Transfer-Encoding: gzip, chunked\r\n\r\n").encode() + b"0\r\n\r\n"
    else:
        raw = (heads[kind] + "\r\n").encode() + body
    if kind == "pipelined-junk":
        raw += draw(st.binary(min_size=1, max_size=100))
    # pipelined-junk: the first request is fine and may be forwarded; the rest must not be.
    return Case(raw, ALLOWED_V4, None, False, False, half_close=True, kind="raw-" + kind)


def exchange(port: int, case: Case, timeout: float = 10.0) -> list[int]:
    """Send ``case``; the statuses of all answers until the sidecar closes (or stays silent)."""
    family = socket.AF_INET6 if ":" in case.source else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.bind((case.source, 0))
        sock.connect(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
        try:
            sock.sendall(case.raw)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the sidecar may close early (413 before the body): then read its answer
        data = b""
        statuses: list[int] = []
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                head = data[:end].decode("latin-1")
                statuses.append(int(head.split(" ", 2)[1]))
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if len(data) >= end + 4 + length:
                    data = data[end + 4 + length :]
                    informational = statuses[-1] < 200  # 100 Continue: the answer follows
                    done = not informational and ("connection: close" in head.lower() or not case.half_close)
                    if done and not data:
                        return statuses
                    continue
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return statuses
            if not chunk:
                return statuses
            data += chunk


def check(case: Case, statuses: list[int], tally: Tally) -> None:
    statuses = [s for s in statuses if s >= 200]  # 100 Continue is not an answer
    tally.sent += 1
    tally.kinds[case.kind] += 1
    for status in statuses or [0]:
        tally.statuses[str(status) if status else "closed"] += 1
    if not statuses:
        tally.closed_by_kind[case.kind] += 1
    bad = [s for s in statuses if s == 500 or (s >= 500 and s not in (501, 505))]
    if bad:
        tally.failures.append(f"{case.kind}: 5xx {bad} for {case.raw[:300]!r}")
    if case.must_forward:
        tally.must_forward.append(case.update_id or 0)
        if statuses[:1] != [200]:
            tally.failures.append(f"{case.kind}: valid update answered {statuses} for {case.raw[:300]!r}")
    if case.must_refuse and case.update_id is not None:
        tally.must_refuse.append(case.update_id)
        if 200 in statuses:
            tally.failures.append(f"{case.kind}: refused update answered 200 {case.raw[:300]!r}")


def verify_upstream(record: Path, tally: Tally) -> dict[str, Any]:
    got: list[int] = []
    invalid: list[str] = []
    for line in record.read_text().splitlines() if record.exists() else []:
        item = json.loads(line)
        head, body = item["head"].lower(), item["body"].encode("latin-1")
        if "x-telegram-bot-api-secret-token" in head:
            invalid.append("secret header forwarded")
        try:
            # The sidecar's own parser (strict JSON, nesting to 1024 levels): the stdlib's would hit
            # Python's recursion limit on a deeply nested, yet valid, forwarded update.
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            invalid.append(f"not JSON: {body[:80]!r}")
            continue
        uid = obj.get("update_id") if isinstance(obj, dict) else None
        if not isinstance(uid, int) or isinstance(uid, bool):
            invalid.append(f"no integer update_id: {body[:80]!r}")
            continue
        got.append(uid)
    received = set(got)
    return {
        "forwarded": len(got),
        "invalid_forwarded": invalid[:20],
        "invalid_forwarded_count": len(invalid),
        "refused_but_forwarded": sorted(set(tally.must_refuse) & received)[:20],
        "valid_not_forwarded": sorted(set(tally.must_forward) - received)[:20],
    }


def nested_json_case(depth: int = 5000) -> Case:
    """Found by this fuzz: json.loads raised RecursionError inside the sidecar's protocol callback."""
    body = b'{"update_id":1,"x":' + b"[" * depth + b"]" * depth + b"}"
    head = f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}\r\n"
    raw = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return Case(raw, ALLOWED_V4, IDS.next(), must_refuse=True, kind="nested-deep")


# -- abusive clients -----------------------------------------------------------------------

ABUSE_KINDS = ("slow-head", "slow-body", "trailer-drip", "silent", "non-reader")
_TOKEN_HEAD = (
    f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}\r\n".encode()
)
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


async def _abuse(port: int, pid: int, abusers: int, seconds: float) -> Abuse:
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


def run(
    examples: int,
    workdir: Path,
    garbage_share: float = 0.2,
    cases: tuple[Case, ...] = (),
    abusers: int = 0,
    abuse_seconds: float = 0.0,
    timeouts: float | None = None,
    max_rss_growth_mb: float = 25.0,
) -> dict[str, Any]:
    """The fuzz, then (with ``abusers``) the abusive clients; ``timeouts`` shortens the sidecar's."""
    started = time.time()
    tally = Tally()
    with Group(workdir / "logs") as group:
        record, sock = workdir / "upstream.jsonl", workdir / "up.sock"
        group.start(
            "upstream",
            [PYTHON, "-m", "benchmarks.servers", "trivial", "--unix", str(sock), "--record", str(record)],
            listen=str(sock),
        )
        token = workdir / "secret-token"
        token.write_text(SECRET_TOKEN + "\n")
        port = free_port()
        argv = [str(BIN / "tgbot-sidecar"), "--listen", f"[::]:{port}", "--secret-token-file", str(token),
                "--upstream", "http://bot/webhook", "--upstream-unix-socket", str(sock),
                "--allow-network", "127.0.0.1/32", "--allow-network", "::1/128",
                "--trusted-proxy", "127.0.0.2/32",
                "--max-body-bytes", str(MAX_BODY), "--admin-listen", f"127.0.0.1:{free_port()}",
                "--upstream-timeout", "5", "--log-level", "WARNING"]  # fmt: skip
        if timeouts is not None:
            for flag in ("--head-timeout", "--body-timeout", "--idle-timeout", "--send-timeout"):
                argv += [flag, str(timeouts)]
        sidecar = group.start("sidecar", argv, listen=("127.0.0.1", port))
        strategy = st.one_of(requests(), garbage()) if garbage_share else requests()

        @settings(max_examples=max(1, examples), deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # fmt: skip
        @given(strategy)
        def fuzz(case: Case) -> None:
            check(case, exchange(port, case), tally)

        for case in cases:
            check(case, exchange(port, case), tally)
        if examples:
            fuzz()
        abused = None
        if abusers:
            abused = abuse_result(
                asyncio.run(_abuse(port, sidecar.pid, abusers, abuse_seconds)), max_rss_growth_mb
            )
        alive = sidecar.alive()
        time.sleep(0.5)
        upstream = verify_upstream(record, tally)
        log = sidecar.log.read_text(errors="replace")
    result = {
        "requests": tally.sent,
        "statuses": dict(tally.statuses.most_common()),
        "kinds": dict(sorted(tally.kinds.items())),
        "must_forward": len(tally.must_forward),
        "must_refuse": len(tally.must_refuse),
        "failures": tally.failures[:20],
        "failure_count": len(tally.failures),
        "sidecar_alive": alive,
        "sidecar_tracebacks": log.count("Traceback"),
        "sidecar_log_tail": log[-4000:] if "Traceback" in log else "",
        "closed_without_answer_by_kind": dict(tally.closed_by_kind.most_common()),
        **upstream,
        **(abused or {}),
        "seconds": time.time() - started,
    }
    result["ok"] = (
        alive
        and not tally.failures
        and not result["sidecar_tracebacks"]
        and not upstream["invalid_forwarded_count"]
        and not upstream["refused_but_forwarded"]
        and not upstream["valid_not_forwarded"]
        and (abused is None or abused["abuse_ok"])
    )
    return result


def render(r: dict[str, Any]) -> str:
    rows: list[tuple[str, Any]] = [
        ("requests sent", r["requests"]),
        ("answers by status", json.dumps(r["statuses"])),
        ("must pass / must be refused", f"{r['must_forward']} / {r['must_refuse']}"),
        ("forwarded (upstream got)", r["forwarded"]),
        ("invalid forwarded", r["invalid_forwarded_count"]),
        ("refused but forwarded", len(r["refused_but_forwarded"])),
        ("valid not forwarded", len(r["valid_not_forwarded"])),
        ("5xx / wrong answers", r["failure_count"]),
        ("sidecar alive, tracebacks", f"{r['sidecar_alive']}, {r['sidecar_tracebacks']}"),
    ]
    if "abuse_ok" in r:
        rows += [
            ("abusive connections by kind", json.dumps(r["abusers_by_kind"])),
            ("  of them closed by the sidecar", json.dumps(r["abusers_closed_by_sidecar"])),
            ("sidecar RSS start / peak MB", f"{r['rss_start_mb']} / {r['rss_peak_mb']}"),
            ("valid updates answered 200", f"{r['valid_answered_200']} / {r['valid_sent']}"),
        ]
    rows += [
        ("seconds", f"{r['seconds']:.0f}"),
        ("verdict", "ok" if r["ok"] else "FAILED"),
    ]
    return report.table(["figure", "value"], rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=10_000)
    p.add_argument("--abusers", type=int, default=400, help="abusive clients at once (0: none)")
    p.add_argument("--abuse-seconds", type=float, default=30.0)
    p.add_argument("--timeouts", type=float, default=None, help="the sidecar's head/body/idle/send timeouts")
    p.add_argument("--max-rss-growth-mb", type=float, default=25.0)
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tgbot-fuzz-") as tmp:
        result = run(args.examples, Path(tmp), abusers=args.abusers, abuse_seconds=args.abuse_seconds,
                     timeouts=args.timeouts, max_rss_growth_mb=args.max_rss_growth_mb)  # fmt: skip
    print(render(result))
    for failure in result["failures"]:
        print("  ", failure)
    result["machine"] = report.machine()
    print(f"\nJSON: {report.write_json('fuzz', result, args.results)}")
    if not result["ok"]:
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
