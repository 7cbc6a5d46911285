"""parse_mode=MarkdownV2 and Markdown as TDLib parses them (td/telegram/MessageEntity.cpp).

MarkdownV2 is strict: every reserved character outside entity syntax must be escaped,
which is the error bots meet most ("Character '.' is reserved and must be escaped with
the preceding '\\'"); the emulator reports it the same way. Offsets are UTF-16 units,
error positions UTF-8 byte offsets, as in Telegram.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from .errors import bad_request
from .updates import utf16_length

V2_RESERVED = "_*[]()~`>#+-=|{}.!"
# TDLib's names for entity types in "Can't find end of ... entity" errors.
_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _fail(message: str) -> NoReturn:
    raise bad_request(f"can't parse entities: {message}")


def _link_entity(url: str) -> dict[str, Any] | None:
    """A text_link or text_mention for a URL, or None when TDLib would drop the link."""
    lowered = url.lower()
    if lowered.startswith("tg://user?id=") and lowered[len("tg://user?id=") :].isdigit():
        return {"type": "text_mention", "user": {"id": int(url[len("tg://user?id=") :])}}
    if "://" in url:
        return (
            {"type": "text_link", "url": url}
            if lowered.split("://", 1)[0] in ("http", "https", "tg", "ton")
            else None
        )
    if "." in url and " " not in url:
        return {"type": "text_link", "url": f"http://{url}"}
    return None


@dataclass
class _Open:
    kind: str
    offset: int  # UTF-16 offset in the output
    byte_offset: int  # where the markup started in the source
    out_index: int  # index into the output pieces (a link's text)
    language: str = ""


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    out: list[str] = []
    length = 0
    entities: list[dict[str, Any]] = []
    stack: list[_Open] = []
    quote_start: int | None = None
    i, size = 0, len(text)

    def at(index: int) -> str:
        return text[index] if index < size else ""

    def emit(piece: str) -> None:
        nonlocal length
        out.append(piece)
        length += utf16_length(piece)

    while i < size:
        c = text[i]
        if c == "\\" and 0 < ord(at(i + 1) or "\0") <= 126:
            emit(text[i + 1])
            i += 2
            continue
        in_code = bool(stack) and stack[-1].kind in ("code", "pre")
        line_start = i == 0 or text[i - 1] == "\n"
        if c == ">" and line_start and not in_code:
            # A quote line: consecutive ">" lines form one blockquote entity.
            if quote_start is None:
                quote_start = length
            i += 1
            continue
        if c == "\n" and quote_start is not None and at(i + 1) != ">":
            if length > quote_start:
                entities.append({"type": "blockquote", "offset": quote_start, "length": length - quote_start})
            quote_start = None
        reserved = "`" if in_code else V2_RESERVED
        if c not in reserved:
            emit(c)
            i += 1
            continue
        top = stack[-1].kind if stack else None
        closes = {
            "bold": c == "*",
            "italic": c == "_" and at(i + 1) != "_",
            "underline": c == "_" and at(i + 1) == "_",
            "strikethrough": c == "~",
            "spoiler": c == "|" and at(i + 1) == "|",
            "code": c == "`",
            "pre": c == "`" and at(i + 1) == "`" and at(i + 2) == "`",
            "text_link": c == "]",
        }.get(top or "", False)
        if not closes:
            i = _open_v2(text, i, stack, length, len(out))
            continue
        opened = stack.pop()
        i += {"underline": 2, "spoiler": 2, "pre": 3}.get(opened.kind, 1)
        entity: dict[str, Any] | None = {"type": opened.kind}
        if opened.kind == "pre" and opened.language:
            entity = {"type": "pre", "language": opened.language}
        if opened.kind == "text_link":
            url = "".join(out[opened.out_index :])
            if at(i) == "(":
                end, url = _read_url(text, i + 1)
                i = end + 1
            entity = _link_entity(url)
        if entity is not None and length > opened.offset:
            kind, extra = entity["type"], {k: v for k, v in entity.items() if k != "type"}
            entities.append(
                {"type": kind, "offset": opened.offset, "length": length - opened.offset, **extra}
            )
    if stack:
        opened = stack[-1]
        _fail(f"Can't find end of {_TYPE_NAMES[opened.kind]} entity at byte offset {opened.byte_offset}")
    if quote_start is not None and length > quote_start:
        entities.append({"type": "blockquote", "offset": quote_start, "length": length - quote_start})
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _open_v2(text: str, i: int, stack: list[_Open], length: int, out_index: int) -> int:
    """Start the entity at text[i]; returns the index after its opening markup."""
    c, byte_offset = text[i], len(text[:i].encode())
    nxt = text[i + 1] if i + 1 < len(text) else ""
    simple = {"*": "bold", "~": "strikethrough", "[": "text_link"}
    if c == "_":
        kind, i = ("underline", i + 2) if nxt == "_" else ("italic", i + 1)
    elif c == "|" and nxt == "|":
        kind, i = "spoiler", i + 2
    elif c in simple:
        kind, i = simple[c], i + 1
    elif c == "`" and text[i : i + 3] == "```":
        i += 3
        end = i
        while end < len(text) and not text[end].isspace() and text[end] != "`":
            end += 1
        language = text[i:end] if end > i and end < len(text) and text[end] != "`" else ""
        i = end if language else i
        if text[i : i + 2] in ("\r\n", "\n\r"):
            i += 2
        elif text[i : i + 1] in ("\n", "\r"):
            i += 1
        stack.append(_Open("pre", length, byte_offset, out_index, language))
        return i
    elif c == "`":
        kind, i = "code", i + 1
    else:
        _fail(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
    stack.append(_Open(kind, length, byte_offset, out_index))
    return i


def _read_url(text: str, start: int) -> tuple[int, str]:
    """The URL of [text](url) from ``start`` (after "("): (index of ")", url)."""
    url: list[str] = []
    i = start
    while i < len(text) and text[i] != ")":
        if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
            url.append(text[i + 1])
            i += 2
            continue
        url.append(text[i])
        i += 1
    if i >= len(text):
        _fail(f"Can't find end of a URL at byte offset {len(text[:start].encode())}")
    return i, "".join(url)


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The legacy Markdown mode: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    i, size = 0, len(text)
    while i < size:
        c = text[i]
        if c == "\\" and i + 1 < size and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            i += 1
            continue
        begin = i
        end_char = "]" if c == "[" else c
        i += 1
        is_pre, language = c == "`" and text[i : i + 2] == "``", ""
        if is_pre:
            i += 2
            end = i
            while end < size and not text[end].isspace() and text[end] != "`":
                end += 1
            if end > i and end < size and text[end] != "`":
                language, i = text[i:end], end
            if text[i : i + 2] in ("\r\n", "\n\r"):
                i += 2
            elif text[i : i + 1] in ("\n", "\r"):
                i += 1
        offset = utf16_length("".join(out))
        while i < size and (text[i] != end_char or (is_pre and text[i + 1 : i + 3] != "``")):
            out.append(text[i])
            i += 1
        if i >= size:
            _fail(f"Can't find end of the entity starting at byte offset {len(text[:begin].encode())}")
        length = utf16_length("".join(out)) - offset
        entity: dict[str, Any] | None
        if c == "[":
            url = text[begin + 1 : i]
            if i + 1 < size and text[i + 1] == "(":
                close = text.find(")", i + 2)
                close = size if close < 0 else close
                url, i = text[i + 2 : close], close
            entity = _link_entity(url)
        else:
            names = {"_": "italic", "*": "bold", "`": "pre" if is_pre else "code"}
            entity = {"type": names[c]}
            if is_pre and language:
                entity["language"] = language
        if entity is not None and length:
            kind, extra = entity["type"], {k: v for k, v in entity.items() if k != "type"}
            entities.append({"type": kind, "offset": offset, "length": length, **extra})
        i += 3 if is_pre else 1
    return "".join(out), entities
