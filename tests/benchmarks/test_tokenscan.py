"""The token scan finds exactly what a plain substring search over every line finds."""

from __future__ import annotations

import secrets as stdlib_secrets

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.tokenscan import needles, scan

TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def naive(haystacks: dict[str, str], secrets: list[str]) -> list[tuple[str, int, str]]:
    wanted = needles(secrets)
    return sorted(
        (where, number, needle[:4] + "...")
        for where, text in haystacks.items()
        for number, line in enumerate(text.splitlines(), 1)
        for needle in wanted
        if needle in line
    )


def leaks(result: dict[str, object]) -> list[tuple[str, int, str]]:
    found = result["leaks"]
    assert isinstance(found, list)
    return sorted((leak["where"], leak["line"], leak["secret"]) for leak in found)


tokens = st.builds(
    lambda bot_id, tail: f"{bot_id}:{tail}",
    st.integers(min_value=1, max_value=10**10),
    st.text(alphabet=TOKEN_CHARS, min_size=8, max_size=40),
)
filler = st.text(alphabet=TOKEN_CHARS + ' :"={}/\n.,', max_size=60)


@given(st.lists(tokens, min_size=1, max_size=5), st.data())
def test_the_scan_finds_what_a_substring_search_finds(secrets: list[str], data: st.DataObject) -> None:
    pieces = data.draw(
        st.lists(
            st.one_of(
                filler, st.sampled_from(secrets), st.sampled_from(secrets).map(lambda t: t.split(":", 1)[1])
            ),
            max_size=12,
        )
    )
    haystacks = {"log": "".join(pieces), "other": data.draw(filler)}
    assert leaks(scan(haystacks, secrets)) == naive(haystacks, secrets)


def test_a_leak_is_reported_once_per_line_and_a_clean_text_has_none() -> None:
    token = f"123456:{stdlib_secrets.token_urlsafe(27)}"
    text = f"ok line\nPOST /bot{token}/setWebhook token={token}\nsecret half {token.split(':')[1]}x\n"
    result = scan({"operator.log": text}, [token])
    tail = token[7:11] + "..."
    assert leaks(result) == sorted(
        [("operator.log", 2, "1234..."), ("operator.log", 2, tail), ("operator.log", 3, tail)]
    )
    assert scan({"operator.log": "nothing here\n"}, [token])["leaks"] == []
