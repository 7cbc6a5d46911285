"""The requests of the bad-input fuzz: hypothesis strategies for updates and every way to spoil
one, each a :class:`Case` that knows whether the sidecar must forward it or refuse it.

Generated: valid updates, malformed JSON, wrong types, huge and truncated bodies, chunked framing,
odd header forms (case, padding, duplicates), wrong or missing secret tokens, spoofed and malformed
``X-Forwarded-For`` (IPv4, IPv6, mapped forms) from an allowed peer, a trusted proxy and an
outsider, IPv6 clients - and raw malformed HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from .updates import SECRET_TOKEN, update

MAX_BODY = 64 * 1024
ALLOWED_V4, PROXY, OUTSIDER, ALLOWED_V6 = "127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"
#: A request head with the right token, for the cases that spoil something else.
TOKEN_HEAD = f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Telegram-Bot-Api-Secret-Token: {SECRET_TOKEN}\r\n"


@dataclass
class Case:
    raw: bytes
    source: str
    update_id: int | None = None
    must_forward: bool = False
    must_refuse: bool = False
    half_close: bool = False
    kind: str = ""


class Ids:
    """update_ids unique within a run (the sidecar answers a repeated one without forwarding it)."""

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
        "no-colon": TOKEN_HEAD + "Broken header\r\n" + cl,
        "space-before-colon": TOKEN_HEAD + "Content-Length : 5\r\n",
        "obs-fold": TOKEN_HEAD + "X-A: a\r\n  folded\r\n" + cl,
        "nul": TOKEN_HEAD + "X-A: a\x00b\r\n" + cl,
        "big-head": TOKEN_HEAD + "X-A: " + "a" * 17_000 + "\r\n" + cl,
        "many-headers": TOKEN_HEAD + many + cl,
        "bad-length": TOKEN_HEAD + "Content-Length: 12abc\r\n",
        "negative-length": TOKEN_HEAD + "Content-Length: -1\r\n",
        "pipelined-junk": TOKEN_HEAD + cl,
    }
    if kind == "bytes":
        raw = draw(st.binary(min_size=1, max_size=500))
    elif kind == "request-line":
        raw = draw(st.sampled_from(lines))
    elif kind == "version":
        raw = (TOKEN_HEAD.replace("HTTP/1.1", draw(versions)) + cl + "\r\n").encode() + body
    elif kind == "lf-only":
        raw = (TOKEN_HEAD + cl + "\r\n").replace("\r\n", "\n").encode() + body
    elif kind == "te-gzip":
        raw = (TOKEN_HEAD + "Transfer-Encoding: gzip, chunked\r\n\r\n").encode() + b"0\r\n\r\n"
    else:
        raw = (heads[kind] + "\r\n").encode() + body
    if kind == "pipelined-junk":
        raw += draw(st.binary(min_size=1, max_size=100))
    # pipelined-junk: the first request is fine and may be forwarded; the rest must not be.
    return Case(raw, ALLOWED_V4, None, False, False, half_close=True, kind="raw-" + kind)


def nested_json_case(depth: int = 5000) -> Case:
    """Found by this fuzz: json.loads raised RecursionError inside the sidecar's protocol callback."""
    body = b'{"update_id":1,"x":' + b"[" * depth + b"]" * depth + b"}"
    raw = (TOKEN_HEAD + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return Case(raw, ALLOWED_V4, IDS.next(), must_refuse=True, kind="nested-deep")
