"""Every block and every command of the user docs is claimed by a runner (tests/docs/fences.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.fences import INLINE, PAGES, REPO_ROOT, RUNNERS, all_blocks, blocks, inline_commands

HERE = Path(__file__).parent

#: Which runners may claim which fence languages.
LANGUAGES = {
    "diagram": {""},
    "bot": {"python"},
    "tgbot-dev": {"sh"},
    "install": {"sh"},
    "kubectl": {"sh"},
    "apply": {"yaml"},
    "usage": {""},
    "python-async": {"python"},
    "python-imports": {"python"},
    "log": {""},
    "entry-points": {"sh"},
}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_block_is_claimed_by_a_runner(page: Path) -> None:
    for block in blocks(page):
        assert block.runner in RUNNERS, (
            f"{block}: tag it <!-- doc-test: RUNNER --> (one of {sorted(RUNNERS)})"
        )
        assert block.lang in LANGUAGES[block.runner], (
            f"{block}: a {block.runner} block cannot be {block.lang!r}"
        )


def test_every_runner_has_its_test_and_is_used() -> None:
    used = {block.runner for block in all_blocks()}
    for runner, (_, test) in RUNNERS.items():
        assert (HERE / test).exists(), f"{runner}: {test} is missing"
        assert runner in used or runner == "diagram", f"no block is tagged {runner}: remove it from RUNNERS"
    assert set(LANGUAGES) == set(RUNNERS)


def test_a_bot_block_names_its_file_and_its_page_runs_it() -> None:
    for block in all_blocks("bot"):
        assert block.argument is not None, block
        assert block.argument.endswith(".py"), block
        runs = [c for b in blocks(block.page) if b.runner == "tgbot-dev" for c in b.commands()]
        assert any(f"python {block.argument}" in c for c in runs), f"{block}: no tgbot-dev command runs it"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_command_in_the_prose_is_claimed(page: Path) -> None:
    unclaimed = [command for command in inline_commands(page) if command not in INLINE]
    assert not unclaimed, f"{page.relative_to(REPO_ROOT)}: add these to fences.INLINE: {unclaimed}"


def test_every_inline_entry_is_still_in_the_docs() -> None:
    present = {command for page in PAGES for command in inline_commands(page)}
    stale = sorted(set(INLINE) - present)
    assert not stale, f"fences.INLINE lists commands no page has any more: {stale}"
