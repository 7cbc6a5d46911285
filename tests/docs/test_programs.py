"""The docs' snippets that are checked against the programs rather than pasted into a shell."""

from __future__ import annotations

import ast
import asyncio
import importlib
import re
import shlex
import textwrap
import tomllib

import pytest

from tests.console import help_text
from tests.docs.fences import INLINE, PAGES, REPO_ROOT, Block, all_blocks
from tests.packaging.test_distributions import DISTRIBUTIONS, LIBRARIES

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def help_flags(program: str) -> frozenset[str]:
    return frozenset(FLAG.findall(help_text(program))) - {"--help"}


def ids(block: Block) -> str:
    return str(block)


def pip_targets(block: Block) -> list[str]:
    targets = []
    for command in block.commands():
        argv = shlex.split(command, comments=True)
        if argv[:2] == ["pip", "install"]:
            targets += argv[2:]
    return targets


def test_every_pip_install_is_a_distribution_the_packaging_tests_install() -> None:
    """tests/packaging installs each of these alone in a fresh venv and runs its console scripts."""
    installed_there = {"./" + folder for folder in (*DISTRIBUTIONS, *LIBRARIES)} | {"."}
    targets = [t for b in all_blocks("install") + all_blocks("tgbot-dev") for t in pip_targets(b)]
    targets += ["./" + folder for how, folder in INLINE.values() if how == "install"]
    assert "./operator" in targets
    assert "." in targets
    for target in targets:
        assert target in installed_there, f"pip install {target}: not a distribution tests/packaging installs"
        assert (REPO_ROOT / target / "pyproject.toml").exists(), target


@pytest.mark.parametrize("command", [c for c, how in INLINE.items() if how[0] == "extra"])
def test_every_extra_in_the_prose_exists_and_the_packaging_tests_install_it(command: str) -> None:
    folder = INLINE[command][1]
    (distribution, extra), *_ = re.findall(r"([\w-]+)\[([\w-]+)\]", command)
    project = tomllib.loads((REPO_ROOT / folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == distribution, command
    assert extra in project.get("optional-dependencies", {}), command
    packaging = (REPO_ROOT / "tests" / "packaging" / "test_distributions.py").read_text()
    assert f"{folder}'}}[{extra}]" in packaging, f"{command}: tests/packaging does not install it"


@pytest.mark.parametrize("block", all_blocks("usage"), ids=ids)
def test_a_synopsis_has_exactly_the_programs_flags(block: Block) -> None:
    assert block.argument is not None
    shown = set(FLAG.findall(block.text))
    flags = help_flags(block.argument)
    # --no-x and --x are one boolean flag; a synopsis shows the form you would type.
    fold = {f.replace("--no-", "--") for f in flags}
    assert {f.replace("--no-", "--") for f in shown} <= fold, f"{block}: not flags of {block.argument}"
    if block.argument == "tgbot-operator":  # docs/operator.md's synopsis is the complete one
        assert fold <= {f.replace("--no-", "--") for f in shown}, f"{block}: lacks {sorted(fold - shown)}"


@pytest.mark.parametrize("command", [c for c, how in INLINE.items() if how[0] == "flag"])
def test_the_flags_in_the_prose_exist(command: str) -> None:
    program = INLINE[command][1]
    assert set(FLAG.findall(command)) <= help_flags(program), command


@pytest.mark.parametrize("command", [c for c, how in INLINE.items() if how[0] == "path"])
def test_the_paths_in_the_prose_exist(command: str) -> None:
    assert (REPO_ROOT / INLINE[command][1]).exists(), command
    if "benchmarks.<name>" in command:  # each benchmark is `python -m benchmarks.<name>`
        assert any("__main__" in p.read_text() for p in (REPO_ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("block", all_blocks("python-async"), ids=ids)
def test_the_async_snippet_runs(block: Block) -> None:
    body = block.text.replace("\n    ...  #", "\n    pass  #")
    source = "async def main():\n" + textwrap.indent(body, "    ")
    namespace: dict[str, object] = {}
    exec(compile(source, str(block), "exec"), namespace)  # noqa: S102 - the doc's own snippet
    asyncio.run(namespace["main"]())  # type: ignore[operator]


@pytest.mark.parametrize("block", all_blocks("python-imports"), ids=ids)
def test_the_foreign_example_compiles_and_its_imports_resolve(block: Block) -> None:
    tree = ast.parse(block.text)
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom | ast.Import)]
    assert imports
    for node in imports:
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        else:
            assert node.module is not None
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


def test_the_wrong_path_log_line_is_the_sidecars() -> None:
    from tgbot_sidecar.pathcheck import PathCheck

    (block,) = all_blocks("log")
    assert block.argument == "sidecar-wrong-path"
    line = block.text.strip()
    match = re.fullmatch(
        r"the dispatcher \((?P<where>[^)]+)\) answered (?P<status>\d+) for POST (?P<path>\S+):.*", line
    )
    assert match, line
    check = PathCheck(match["where"], match["path"])
    check.status = int(match["status"])
    assert check.problem_text() == line


def test_the_two_commands_are_what_ci_and_the_demo_test_run() -> None:
    (block,) = all_blocks("entry-points")
    assert [shlex.split(c, comments=True) for c in block.commands()] == [["hack/demo.sh"], ["hack/test.sh"]]
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "exec hack/test.sh", ".ci/run must run exactly hack/test.sh"
    demo = (REPO_ROOT / "hack" / "demo.sh").read_text().strip().splitlines()
    assert demo[-1] == 'exec .venv/bin/tgbot-demo "$@"'
    # tests/e2e/test_demo.py runs what tgbot-demo runs (python -m tgbot_localdev.demo), step by step.
    assert "tgbot_localdev.demo" in (REPO_ROOT / "tests" / "e2e" / "test_demo.py").read_text()
    for script in ("hack/demo.sh", "hack/test.sh", ".ci/run"):
        assert (REPO_ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"


ENV_PROGRAMS = {
    "TGBOT_OPERATOR_": "tgbot-operator",
    "TGBOT_SIDECAR_": "tgbot-sidecar",
    "TGBOT_EMULATOR_": "tgbot-emulator",
}


#: Variables that are no flag's (so not in --help) -> the module that reads them.
ENV_ONLY: dict[str, str] = {}


def test_every_environment_variable_in_the_docs_is_the_programs() -> None:
    """TGBOT_<PROGRAM>_<FLAG> as `--help` lists them; TGBOT_CACHE_DIR as the local tools read it."""
    named = {name for page in PAGES for name in re.findall(r"\bTGBOT_[A-Z_]*[A-Z]\b", page.read_text())}
    assert "TGBOT_OPERATOR_CHECK_INTERVAL" in named
    for name in sorted(named):
        prefix = next((p for p in ENV_PROGRAMS if name.startswith(p)), None)
        if name in ENV_ONLY:  # a variable without a flag: read where it says
            assert f'"{name}"' in (REPO_ROOT / ENV_ONLY[name]).read_text(), name
        elif prefix is not None:
            program = ENV_PROGRAMS[prefix]
            assert re.search(rf"\b{name}\b", help_text(program)), f"{name}: not in {program} --help"
        elif name == "TGBOT_CACHE_DIR":
            for script in ("hack/build-controlplane.sh", "hack/build-images.sh"):
                assert "${TGBOT_CACHE_DIR:-" in (REPO_ROOT / script).read_text(), script
        else:
            raise AssertionError(f"{name}: which program reads it? (add it here)")
