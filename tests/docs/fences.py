"""The commands and snippets of the user docs, found and classified, so that tests can run or check each.

A fenced block is claimed by the HTML comment right above it (invisible on GitHub)::

    <!-- doc-test: RUNNER [ARGUMENT] -->

``RUNNERS`` says what each runner does and which test does it; an untagged block, or a tag naming
no runner, fails ``test_inventory``. Commands inside backticks in the prose (``INLINE_COMMAND``)
are looked up in ``INLINE``, which maps each to a runner as well.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The pages these tests keep true (docs/helm.md has tests/charts/test_helm_md.py; test-cluster.md,
#: architecture.md and benchmarks.md belong to their programs' tests).
PAGES = sorted(
    [
        REPO_ROOT / "README.md",
        *(
            REPO_ROOT / "docs" / name
            for name in ("operator.md", "sidecar.md", "emulator.md", "troubleshooting.md")
        ),
        *(REPO_ROOT / "docs" / name for name in ("bot-contract.md", "security.md")),
        *REPO_ROOT.glob("examples/*/README.md"),
        *REPO_ROOT.glob("integrations/*/README.md"),
    ]
)

#: runner -> (what it does, the test that does it)
RUNNERS: dict[str, tuple[str, str]] = {
    "diagram": ("a picture, no command: nothing to run", "test_inventory.py"),
    "bot": (
        "python: written to the file ARGUMENT, the bot the page's tgbot-dev commands run",
        "test_local.py",
    ),
    "tgbot-dev": ("sh: run as written, .venv's scripts on PATH (pip lines: see `install`)", "test_local.py"),
    "install": ("sh: each `pip install PATH` is a distribution tests/packaging installs", "test_programs.py"),
    "kubectl": (
        "sh: run by bash against the real API server, an operator and the emulator",
        "test_cluster.py",
    ),
    "apply": (
        "yaml: `kubectl apply --dry-run=server` (schema and CEL rules) on the real API server",
        "test_cluster.py",
    ),
    "usage": ("a synopsis: its flags are exactly PROGRAM's, from `PROGRAM --help`", "test_programs.py"),
    "python-async": ("python: run as the body of an async function", "test_programs.py"),
    "python-imports": (
        "python that is not ours to run (aiogram's example): compiles, imports resolve",
        "test_programs.py",
    ),
    "log": ("a log line: what the program writes, from its own code", "test_programs.py"),
    "entry-points": (
        "hack/demo.sh and hack/test.sh: what they run (the demo: tests/e2e)",
        "test_programs.py",
    ),
}

TAG = re.compile(r"<!--\s*doc-test:\s*(?P<runner>[\w-]+)(?:\s+(?P<argument>[^\s>]+))?\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<text>.*?)^```\s*$", re.DOTALL | re.MULTILINE)
#: A command in the prose: a known program and at least one argument, in backticks.
INLINE_COMMAND = re.compile(
    r"`((?:kubectl|helm|pip|python|tgbot-[a-z]+|hack/|\.venv/bin/|\.ci/)[^`]* [^`]*)`"
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str
    runner: str | None
    argument: str | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line} ({self.lang or 'plain'}, {self.runner})"

    def commands(self) -> list[str]:
        """An sh block's commands: continuation lines joined, comments and blank lines dropped."""
        out = []
        for line in self.text.replace("\\\n", " ").splitlines():
            if shlex.split(line, comments=True):
                out.append(line)
        return out


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        above = text[: match.start()].rstrip("\n").splitlines()
        tag = None
        while above and above[-1].startswith("<!--"):  # the comments right above the fence
            tag = TAG.search(above.pop()) or tag
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group("lang"),
                text=match.group("text"),
                runner=tag.group("runner") if tag else None,
                argument=tag.group("argument") if tag else None,
            )
        )
    return found


def all_blocks(runner: str | None = None) -> list[Block]:
    return [b for page in PAGES for b in blocks(page) if runner is None or b.runner == runner]


def inline_commands(page: Path) -> list[str]:
    """Commands in the page's prose (fenced blocks left out)."""
    return INLINE_COMMAND.findall(FENCE.sub("", page.read_text()))


#: Every command in the prose -> how it is checked: ("run", ...) runs it (test_local/test_cluster),
#: ("flag", program) looks its flags up in ``program --help``, ("path", path) checks a file,
#: ("mention", why) is a name in a sentence, not something to paste.
INLINE: dict[str, tuple[str, str]] = {
    "hack/demo.sh --interactive": ("flag", "tgbot-demo"),
    "hack/demo.sh --kubeconfig PATH": ("flag", "tgbot-demo"),
    "hack/demo.sh --pods": ("flag", "tgbot-demo"),
    "tgbot-operator --log-level debug": ("flag", "tgbot-operator"),
    "tgbot-dev run --help": ("run", "local"),
    "tgbot-sidecar --help": ("run", "local"),
    "python -m tgbot_emulator": ("run", "local"),  # with --help
    "tgbot-emulator --listen 127.0.0.1:8081 --bot 123:ABC=echo_bot --allow-local-webhooks": (
        "run",
        "emulator",
    ),
    "tgbot-dev run -- python examples/ptb-bot/ptb_bot.py": ("run", "tgbot-dev"),
    "pip install ./integrations/aiogram": ("install", "integrations/aiogram"),
    "pip install ./integrations/ptb": ("install", "integrations/ptb"),
    "pip install 'tgbot-operator[kubernetes]'": ("extra", "operator"),
    ".venv/bin/pytest tests/operator": ("path", "tests/operator"),
    ".venv/bin/pytest tests/e2e/operator": ("path", "tests/e2e/operator"),
    ".venv/bin/python -m benchmarks.<name>": ("path", "benchmarks"),
    "kubectl get tgbot": ("run", "kubectl"),
    "kubectl get tgbot -o wide": ("run", "kubectl"),
    "kubectl describe tgbot echo": ("run", "kubectl"),
    "kubectl describe tgbot <name>": ("run", "kubectl"),
    'kubectl annotate tgbot echo tgbot.dev/rotate-secret-token="$(date +%s)" --overwrite': ("run", "kubectl"),
    "kubectl create secret generic <name> --from-literal=token=<token>": ("run", "kubectl"),
    "kubectl auth can-i create telegrambots.tgbot.dev -n <ns> --as <user>": ("run", "kubectl"),
    "tgbot-emulator listening on http://HOST:PORT": ("run", "emulator"),  # the line it prints
    "tgbot-dev run": ("mention", "the command's name in a sentence"),
    "kubectl create secret generic": ("mention", "the kind of Secret, in a table cell"),
    "kubectl apply": ("mention", "'rejected by kubectl apply': the API server's validation, test_cluster.py"),
    "helm test": ("mention", "a feature; run by tests/pods/test_helm_test.py"),
    '.venv/bin/pytest -m "not cluster and not pods and not slow" -n 2': (
        "mention",
        "the unit layer of docs/test-cluster.md, collected by tests/cluster/test_test_cluster_md.py",
    ),
}

#: What the page's placeholders become when a test pastes a command.
PLACEHOLDERS = {"<name>": "echo", "<ns>": "default", "<user>": "alice"}


def fill(command: str, **extra: str) -> str:
    for placeholder, value in {**PLACEHOLDERS, **extra}.items():
        command = command.replace(placeholder, value)
    return command
