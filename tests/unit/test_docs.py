"""The user documentation names only commands, options and files that exist.

A user has only the repository: a command in README.md or docs/ that `ferry` does not
have, or a link to a page outside the repository, is a dead end for them.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~)")
_INLINE = re.compile(r"`([^`\n]+)`")
# `ferry <sub>` where `ferry` is a word of its own (not ferry-worker, ferry.yaml, ferry:).
_COMMAND = re.compile(r"(?<![\w./-])ferry ([a-z][a-z-]*)")
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
# Where one command of a shell line ends: a pipe, a chain.
_END = re.compile(r"\s\|\s|&&|;")
_COMMENT = re.compile(r"(^|\s)#\s.*$")
#: Words that mark a command as not built yet (docs may name what is planned, as planned).
_NOT_YET = re.compile(r"\b(not|yet|planned|coming)\b", re.IGNORECASE)


def _code_lines(page: Path) -> Iterator[tuple[int, str]]:
    """Lines of fenced blocks, and inline code spans of the other lines."""
    in_fence = False
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        if in_fence:
            yield number, line
        else:
            for span in _INLINE.findall(line):
                yield number, span


def _commands(page: Path) -> Iterator[tuple[str, str, list[str], bool]]:
    """(where, sub-command, flags, said to be not built yet) for every `ferry <sub> …`
    written in a page's code (shell comments left out)."""
    lines = page.read_text().splitlines()
    for number, text in _code_lines(page):
        code = _COMMENT.sub("", text)
        for match in _COMMAND.finditer(code):
            rest = code[match.end() :]
            end = _END.search(rest)
            segment = rest[: end.start()] if end else rest
            planned = bool(_NOT_YET.search(lines[number - 1]))
            yield f"{page.relative_to(ROOT)}:{number}", match.group(1), _FLAG.findall(segment), planned


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Options of a sub-command and of its own actions (`ferry dev --home X up --only …`)."""
    options = {flag for action in parser._actions for flag in action.option_strings}
    for child in _subparsers(parser).values():
        options |= _options(child)
    return options


def test_the_pages_mention_ferry_commands_at_all() -> None:
    found = {sub for page in PAGES for _, sub, _, _ in _commands(page)}
    assert {"run", "lint", "worker", "submit", "topics", "dev"} <= found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_ferry_command_and_option_in_the_docs_exists(page: Path) -> None:
    commands = _subparsers(build_parser())
    problems = []
    for where, sub, flags, planned in _commands(page):
        if sub not in commands and planned:
            continue  # e.g. "the HTTP API (`ferry api`) is not built yet"
        if sub not in commands:
            problems.append(f"{where}: `ferry {sub}` is not a ferry command (have: {', '.join(sorted(commands))})")
            continue
        known = _options(commands[sub])
        problems += [f"{where}: `ferry {sub}` has no option {flag}" for flag in flags if flag not in known]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository_and_lead_somewhere(page: Path) -> None:
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"^[a-z]+://", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not path.exists():
            problems.append(f"{target}: no such file")
    assert not problems, f"{page.relative_to(ROOT)}: " + "; ".join(problems)


def _python_block(page: Path, marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
    matching = [block for block in blocks if marker in block]
    assert len(matching) == 1, f"{page.relative_to(ROOT)}: one python block with {marker!r}"
    return matching[0]


async def test_the_testing_example_of_engine_md_passes_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """The "Testing your agents without a provider" example is a test file a user copies:
    run its tests against this repository's example project."""
    monkeypatch.chdir(ROOT)  # the example loads the project from "."
    code = _python_block(ROOT / "docs" / "engine.md", "tests/test_agents.py")
    namespace: dict[str, object] = {"__name__": "docs_engine_example"}
    exec(compile(code, "docs/engine.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_") and callable(value)]
    assert len(tests) == 2
    for test in tests:
        await test()  # type: ignore[operator]
