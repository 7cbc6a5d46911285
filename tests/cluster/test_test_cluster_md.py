"""docs/test-cluster.md, copied: each command of its ``sh`` blocks is checked here or named as not
run on this machine (kind/k3d, in the section that says so)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "test-cluster.md"
NOT_RUN_HERE = "## The same tests on kind or k3d (not run here)"


def _commands(text: str) -> list[list[str]]:
    out = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                out.append(argv)
    return out


def _collected(*args: str) -> list[str]:
    """The test ids pytest selects with these arguments (collection only)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"pytest {' '.join(args)}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.mark.slow  # about a minute: two of them collect the whole suite
@pytest.mark.timeout(900)  # collections of (parts of) the suite, each a fresh interpreter
def test_every_command_is_checked_or_marked_not_run_here() -> None:
    text = PAGE.read_text()
    assert NOT_RUN_HERE in text
    here, elsewhere = text.split(NOT_RUN_HERE)
    checked = 0
    for argv in _commands(here):
        if argv[0] == ".venv/bin/pytest":
            selected = _collected(*argv[1:])
            assert selected, f"{shlex.join(argv)} selects no test"
            if "-k" in argv:
                assert all(argv[argv.index("-k") + 1] in test for test in selected), selected
            if argv[1:3] == ["-m", "not pods"]:
                assert not [t for t in selected if t.startswith("tests/pods/")], "pod tests selected"
            if argv[1:3] == ["-m", "not cluster and not pods and not slow"]:
                needs_cluster = ("tests/pods/", "tests/e2e/", "tests/charts/test_install")
                assert not [t for t in selected if t.startswith(needs_cluster)], "cluster tests selected"
        elif argv[0] == "hack/test.sh":
            # The README's and CI's command: it ends in pytest with these arguments.
            script = (REPO_ROOT / "hack" / "test.sh").read_text()
            assert script.rstrip().endswith('exec .venv/bin/pytest "$@"'), (
                "hack/test.sh passes its arguments on"
            )
            assert _collected(*argv[1:]), f"{shlex.join(argv)} selects no test"
        elif argv == ["hack/demo.sh", "--pods"]:
            script = (REPO_ROOT / "hack" / "demo.sh").read_text()
            assert 'exec .venv/bin/tgbot-demo "$@"' in script
            test = (REPO_ROOT / "tests" / "pods" / "test_demo_pods.py").read_text()
            assert '"tgbot_localdev.demo", "--pods"' in test, "the pod demo test runs tgbot-demo --pods"
        else:
            raise AssertionError(f"docs/test-cluster.md runs {shlex.join(argv)}: not checked here")
        checked += 1
    assert checked == 5, checked
    # Only kind/k3d set-up in the section that says it is not run here.
    for argv in _commands(elsewhere):
        assert argv[0] in {"kind", "k3d", "export", "hack/test.sh"}, argv
