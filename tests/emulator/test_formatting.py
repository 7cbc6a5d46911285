"""parse_mode=HTML: the stored text loses its tags and gains entities, broken markup is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.helpers import BOT_ID, BotApi
from tgbot_emulator import ApiError, EmulatorClient
from tgbot_emulator.formatting import parse_html


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
