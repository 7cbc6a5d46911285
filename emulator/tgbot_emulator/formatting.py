"""parse_mode=HTML as Telegram applies it: tags become entities, the text loses its markup.

(Markdown and MarkdownV2 live in :mod:`markdown`; :func:`apply_parse_mode` picks the parser.)

Follows TDLib's parser: the tags and character references Telegram documents
(https://core.telegram.org/bots/api#html-style), offsets in UTF-16 code units, and
TDLib's error texts ("Unsupported start tag ..." with UTF-8 byte offsets).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import bad_request
from .markdown import parse_markdown, parse_markdown_v2
from .updates import utf16_length

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_ATTRIBUTE = re.compile(r"""\s*([a-zA-Z-]+)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_CHAR_REF = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);")
_NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


@dataclass
class _Open:
    tag: str
    entity: dict[str, Any] | None
    start: int  # UTF-16 offset in the output


@dataclass
class _Parser:
    source: str
    out: list[str] = field(default_factory=list)
    length: int = 0  # UTF-16 length of what was written so far
    stack: list[_Open] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, message: str) -> NoReturn:
        raise bad_request(f"can't parse entities: {message}")

    def byte_offset(self, index: int) -> int:
        return len(self.source[:index].encode())

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.length += utf16_length(text)

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        index, text = 0, self.source
        while index < len(text):
            char = text[index]
            if char == "<":
                index = self.tag(index)
            elif char == "&":
                match = _CHAR_REF.match(text, index)
                name = match.group(1) if match else ""
                if match and (name.startswith("#") or name in _NAMED_REFS):
                    self.emit(_NAMED_REFS.get(name) or html.unescape(match.group(0)))
                    index = match.end()
                else:  # an unknown or unterminated reference stays as text, as in TDLib
                    self.emit("&")
                    index += 1
            else:
                end = min(
                    (p for p in (text.find("<", index), text.find("&", index)) if p >= 0), default=len(text)
                )
                self.emit(text[index:end])
                index = end
        if self.stack:
            self.fail(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def tag(self, index: int) -> int:
        end = self.source.find(">", index)
        if end < 0:
            self.fail(f"Unclosed start tag at byte offset {self.byte_offset(index)}")
        body = self.source[index + 1 : end]
        if body.startswith("/"):
            self.close(body[1:].strip().lower(), index)
        else:
            self.open(body, index)
        return end + 1

    def open(self, body: str, index: int) -> None:
        name, _, rest = body.partition(" ")
        name = name.strip().lower()
        attributes = {
            m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or ""
            for m in _ATTRIBUTE.finditer(rest)
        }
        entity: dict[str, Any] | None
        if name in _SIMPLE_TAGS:
            entity = {"type": _SIMPLE_TAGS[name]}
        elif name == "span" and attributes.get("class") == "tg-spoiler":
            entity = {"type": "spoiler"}
        elif name == "a":
            href = attributes.get("href", "")
            user = re.fullmatch(r"tg://user\?id=(\d+)", href)
            entity = {"type": "text_mention", "user": {"id": int(user.group(1))}} if user else None
            if entity is None and href:
                entity = {"type": "text_link", "url": href}
        elif name == "blockquote":
            entity = {"type": "expandable_blockquote" if "expandable" in attributes else "blockquote"}
        elif name == "tg-emoji" and attributes.get("emoji-id", "").isdigit():
            entity = {"type": "custom_emoji", "custom_emoji_id": attributes["emoji-id"]}
        else:
            self.fail(f'Unsupported start tag "{name}" at byte offset {self.byte_offset(index)}')
        # <pre><code class="language-x"> is one pre entity with a language.
        parent = self.stack[-1] if self.stack else None
        if name == "code" and parent is not None and parent.tag == "pre" and parent.entity is not None:
            language = attributes.get("class", "")
            if language.startswith("language-"):
                parent.entity["language"] = language.removeprefix("language-")
                entity = None
        self.stack.append(_Open(name, entity, self.length))

    def close(self, name: str, index: int) -> None:
        if not self.stack:
            self.fail(f"Unexpected end tag at byte offset {self.byte_offset(index)}")
        top = self.stack.pop()
        if top.tag != name:
            where = f"at byte offset {self.byte_offset(index)}"
            self.fail(f'Unmatched end tag {where}, expected "</{top.tag}>", found "</{name}>"')
        if top.entity is not None and self.length > top.start:
            kind, extra = top.entity["type"], {k: v for k, v in top.entity.items() if k != "type"}
            self.entities.append(
                {"type": kind, "offset": top.start, "length": self.length - top.start, **extra}
            )


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(plain text, entities) of an HTML-formatted message; a Bad Request on broken markup."""
    return _Parser(text).run()


def apply_parse_mode(text: str, parse_mode: str, entities: list[Any] | None) -> tuple[str, list[Any] | None]:
    """The text and entities Telegram would store for this parse_mode."""
    parsers = {"html": parse_html, "markdownv2": parse_markdown_v2, "markdown": parse_markdown}
    parser = parsers.get(parse_mode)
    if parser is None or not text:
        return text, entities
    plain, parsed = parser(text)
    return plain, parsed or None
