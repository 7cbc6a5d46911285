"""The README stays true: its flag tables cover every flag the programs have; the docs' links resolve.

Its commands and snippets are run by the other tests here (fences.py says which).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.console import help_text
from tests.docs.fences import PAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()


def flags_of(script: str) -> set[str]:
    """The long flags ``SCRIPT --help`` lists (``--no-x`` forms folded into ``--x``)."""
    found = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", help_text(script))) - {"--help"}
    return {flag.replace("--no-", "--") for flag in found}


@pytest.mark.parametrize("script", ["tgbot-operator", "tgbot-sidecar"])
def test_the_readme_documents_every_flag(script: str) -> None:
    documented = {flag.replace("--no-", "--") for flag in re.findall(r"`(--[a-z][a-z0-9-]+)", README)}
    documented |= {
        flag.replace("--no-", "--") for flag in re.findall(r"(?<=[`, ])(--[a-z][a-z0-9-]+)", README)
    }
    missing = sorted(flags_of(script) - documented)
    assert not missing, f"README.md lacks {script}'s flags {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    links = re.findall(r"\]\(((?!https?:|#)[^)#]+)", page.read_text())
    broken = [link for link in links if not (page.parent / link).exists()]
    assert not broken, f"{page.relative_to(REPO_ROOT)} links to missing files: {broken}"


def test_the_link_pattern_finds_the_readmes_links() -> None:
    assert len(re.findall(r"\]\(((?!https?:|#)[^)#]+)", README)) > 5
