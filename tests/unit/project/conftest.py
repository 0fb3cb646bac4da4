"""Project fixtures: small projects written into tmp_path, one file per dict entry."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

#: A complete, valid LLM agent header; tests append lines 6+ or replace lines.
HEADER = """\
version: "1.0"
name: a
description: test agent
model: openai/gpt-4o-mini
system_prompt: You help.
"""

#: Tool modules shared by the malformed-project cases; each function is one kind of mistake.
GOOD_TOOLS = '''\
from json import dumps as imported

CONST = 3


def f(x: int) -> int:
    """Return x."""
    return x


def g(y: str = "a") -> str:
    return y


def varargs(*args):
    return args


def kwargs(**options):
    return options


def posonly(a, /, b):
    return a


def bad_union(v: int | str):
    return v


def no_payload(data: dict):
    return data


def extra_param(payload: dict, flag: bool):
    return payload


def store(payload: dict, context: dict | None = None) -> dict:
    return payload
'''

OTHER_TOOLS = """\
def f(z: float) -> float:
    return z
"""

BOOM_TOOLS = """\
raise RuntimeError("kaboom: missing API key")


def run(payload):
    return payload
"""

ProjectFactory = Callable[[Mapping[str, str]], Path]


def write_project(root: Path, files: Mapping[str, str]) -> Path:
    (root / "agents").mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Write a project with the standard tool modules plus `files`; return its root."""
    counter = iter(range(1000))

    def factory(files: Mapping[str, str]) -> Path:
        root = tmp_path / f"project{next(counter)}"
        base = {"tools/good.py": GOOD_TOOLS, "tools/other.py": OTHER_TOOLS, "tools/boom.py": BOOM_TOOLS}
        return write_project(root, {**base, **files})

    return factory
