"""parse_mode HTML, MarkdownV2 and Markdown: markup becomes entities, broken markup is refused."""

from __future__ import annotations

import html
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram.helpers import escape_markdown

from tests.emulator.helpers import BOT_ID, BotApi
from tgbot_emulator import ApiError, EmulatorClient
from tgbot_emulator.formatting import parse_html
from tgbot_emulator.markdown import parse_markdown, parse_markdown_v2


@pytest.mark.parametrize(
    ("source", "text", "entities"),
    [
        ("<b>bold</b> and <strong>strong</strong>", "bold and strong", [("bold", 0, 4), ("bold", 9, 6)]),
        (
            "<i>a</i><em>b</em><u>c</u><ins>d</ins>",
            "abcd",
            [("italic", 0, 1), ("italic", 1, 1), ("underline", 2, 1), ("underline", 3, 1)],
        ),
        (
            "<s>x</s><strike>y</strike><del>z</del>",
            "xyz",
            [("strikethrough", 0, 1), ("strikethrough", 1, 1), ("strikethrough", 2, 1)],
        ),
        (
            '<tg-spoiler>a</tg-spoiler><span class="tg-spoiler">b</span>',
            "ab",
            [("spoiler", 0, 1), ("spoiler", 1, 1)],
        ),
        (
            "1 &lt; 2 &amp;&amp; 3 &gt; 2 &quot;ok&quot; &#65;&#x42; &nbsp;",
            '1 < 2 && 3 > 2 "ok" AB &nbsp;',
            [],
        ),
        ("<b>outer <i>inner</i></b>", "outer inner", [("bold", 0, 11), ("italic", 6, 5)]),
        ("\N{GRINNING FACE}<b>x</b>", "\N{GRINNING FACE}x", [("bold", 2, 1)]),
        ("<blockquote expandable>q</blockquote>", "q", [("expandable_blockquote", 0, 1)]),
    ],
)
def test_html_entities(source: str, text: str, entities: list[tuple[str, int, int]]) -> None:
    plain, found = parse_html(source)
    assert plain == text
    assert [(e["type"], e["offset"], e["length"]) for e in found] == entities


def test_links_mentions_and_code_blocks() -> None:
    plain, found = parse_html(
        '<a href="https://example.com/">site</a> <a href="tg://user?id=42">Ann</a> '
        '<pre><code class="language-python">print(1)</code></pre> <code>x</code>'
    )
    assert plain == "site Ann print(1) x"
    assert found == [
        {"type": "text_link", "offset": 0, "length": 4, "url": "https://example.com/"},
        {"type": "text_mention", "offset": 5, "length": 3, "user": {"id": 42}},
        {"type": "pre", "offset": 9, "length": 8, "language": "python"},
        {"type": "code", "offset": 18, "length": 1},
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<br>line", 'Unsupported start tag "br" at byte offset 0'),
        ("é<b>x</i>", 'Unmatched end tag at byte offset 6, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
    ],
)
def test_broken_html_is_refused(source: str, expected: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_html(source)
    assert refused.value.description == f"Bad Request: can't parse entities: {expected}"


async def test_send_and_edit_with_html(api: BotApi, client: EmulatorClient) -> None:
    sent: dict[str, Any] = await api.ok("sendMessage", chat_id=5, text="<b>Hi</b> there", parse_mode="HTML")
    assert sent["text"] == "Hi there"
    assert sent["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    edited = await api.ok("editMessageText", chat_id=5, message_id=1, text="<i>Bye</i>", parse_mode="html")
    assert (edited["text"], edited["entities"][0]["type"]) == ("Bye", "italic")
    [line] = await client.transcript(BOT_ID, 5)
    assert line["text"] == "Bye"
    status, body = await api.json("sendMessage", chat_id=5, text="<b></b>", parse_mode="HTML")
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, body = await api.json("sendMessage", chat_id=5, text="<b>x", parse_mode="HTML")
    assert status == 400
    assert body["description"].startswith("Bad Request: can't parse entities: ")
    plain = await api.ok("sendMessage", chat_id=5, text="<b>as is</b>")
    assert plain["text"] == "<b>as is</b>"


@pytest.mark.parametrize(
    ("source", "text", "entities"),
    [
        (
            "*bold* _it_ __under__ ~gone~ ||hidden||",
            "bold it under gone hidden",
            [
                ("bold", 0, 4),
                ("italic", 5, 2),
                ("underline", 8, 5),
                ("strikethrough", 14, 4),
                ("spoiler", 19, 6),
            ],
        ),
        ("*a _b_ c*", "a b c", [("bold", 0, 5), ("italic", 2, 1)]),
        ("`x.y` and 1\\.5\\!", "x.y and 1.5!", [("code", 0, 3)]),
        (">quoted\n>twice\nafter", "quoted\ntwice\nafter", [("blockquote", 0, 12)]),
        ("\N{GRINNING FACE} *x*", "\N{GRINNING FACE} x", [("bold", 3, 1)]),
    ],
)
def test_markdown_v2_entities(source: str, text: str, entities: list[tuple[str, int, int]]) -> None:
    plain, found = parse_markdown_v2(source)
    assert plain == text
    assert [(e["type"], e["offset"], e["length"]) for e in found] == entities


def test_markdown_v2_links_and_pre() -> None:
    plain, found = parse_markdown_v2("[docs](https://example.com/a\\)b) ```python\nprint(1)```")
    assert plain == "docs print(1)"
    assert found == [
        {"type": "text_link", "offset": 0, "length": 4, "url": "https://example.com/a)b"},
        {"type": "pre", "offset": 5, "length": 8, "language": "python"},
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Price: 1.5", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("done!", "Character '!' is reserved and must be escaped with the preceding '\\'"),
        ("a - b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("*open", "Can't find end of Bold entity at byte offset 0"),
        ("é _open", "Can't find end of Italic entity at byte offset 3"),
        ("[a](https://x", "Can't find end of a URL at byte offset 4"),
    ],
)
def test_broken_markdown_v2_is_refused(source: str, expected: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_markdown_v2(source)
    assert refused.value.description == f"Bad Request: can't parse entities: {expected}"


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200))
def test_ptb_escaped_text_comes_back_unchanged(text: str) -> None:
    """Whatever a bot escapes with PTB's helper parses back to exactly that text."""
    assert parse_markdown_v2(escape_markdown(text, version=2)) == (text, [])


def test_legacy_markdown() -> None:
    plain, found = parse_markdown("*b* _i_ `c` [t](https://x.y) ```py\nx``` 1.5!")
    assert plain == "b i c t x 1.5!"
    assert [(e["type"], e["offset"], e["length"]) for e in found] == [
        ("bold", 0, 1),
        ("italic", 2, 1),
        ("code", 4, 1),
        ("text_link", 6, 1),
        ("pre", 8, 1),
    ]
    with pytest.raises(ApiError, match="Can't find end of the entity starting at byte offset 0"):
        parse_markdown("*open")


async def test_send_with_markdown_v2(api: BotApi, client: EmulatorClient) -> None:
    sent: dict[str, Any] = await api.ok(
        "sendMessage", chat_id=5, text="*Total:* 3\\.50", parse_mode="MarkdownV2"
    )
    assert (sent["text"], sent["entities"]) == ("Total: 3.50", [{"type": "bold", "offset": 0, "length": 6}])
    status, body = await api.json("sendMessage", chat_id=5, text="Total: 3.50", parse_mode="MarkdownV2")
    assert status == 400
    assert body["description"] == (
        "Bad Request: can't parse entities:"
        " Character '.' is reserved and must be escaped with the preceding '\\'"
    )
    [line] = await client.transcript(BOT_ID, 5)
    assert line["text"] == "Total: 3.50"


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200))
def test_html_escaped_text_comes_back_unchanged(text: str) -> None:
    """aiogram's html.quote (html.escape) output parses back to exactly the text."""
    assert parse_html(html.escape(text)) == (text, [])
