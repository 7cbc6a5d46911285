"""Our console scripts' ``--help`` (or any argv that exits at once), run in this process.

A test that checks a program's flag list calls the script's entry point (the ``[project.scripts]``
function pip installs) instead of spawning an interpreter that imports the program again: same
function, same argv, same output, a second less per program. The installed scripts themselves
run as real processes in tests/packaging (a fresh venv per distribution, each script's --help),
tests/sidecar/test_process.py and tests/emulator/test_cli.py.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from unittest import mock


@dataclass(frozen=True)
class Exited:
    code: int
    stdout: str
    stderr: str


def run_script(script: str, *args: str) -> Exited:
    """Call console script ``script``'s entry point with ``args``, as ``script *args`` would.

    The width is a pipe's (argparse wraps at $COLUMNS, else 80), as for a subprocess with captured
    output, so the text is what such a subprocess would print."""
    (entry,) = entry_points(group="console_scripts", name=script)
    main = entry.load()
    stdout, stderr = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with (
        mock.patch.dict(os.environ, {"COLUMNS": os.environ.get("COLUMNS", "80")}),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main([*args])
        except SystemExit as exit_:
            code = exit_.code
    assert isinstance(code, int | None), code
    return Exited(code=code or 0, stdout=stdout.getvalue(), stderr=stderr.getvalue())


@cache
def help_text(script: str) -> str:
    """``script --help``'s output; it must exit 0."""
    result = run_script(script, "--help")
    assert result.code == 0, result.stderr
    return result.stdout
