"""One name for each concept: the agent union and tool selection are defined once in app/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import app
from app.project import AgentSpec, LLMAgentSpec, SequentialAgentSpec, ToolAgentSpec

APP = Path(app.__file__).parent
SOURCES = {path.relative_to(APP).as_posix(): path.read_text() for path in APP.rglob("*.py")}


def _defining(pattern: str) -> list[str]:
    return sorted(path for path, text in SOURCES.items() if re.search(pattern, text, re.MULTILINE))


def test_select_tools_is_defined_once() -> None:
    assert _defining(r"^\s*(async )?def select_tools\b") == ["project/project.py"]


def test_the_agent_union_is_spelt_once_as_agent_spec() -> None:
    # Any union of the agent classes, in either spelling, lives in models.py only.
    union = r"(LLMAgentSpec|SequentialAgentSpec|ToolAgentSpec)(, Tag\(\"\w+\"\)\])?\s*\|\s*(Annotated\[)?(LLM|Sequential|Tool)AgentSpec"
    assert _defining(union) == ["project/models.py"]
    assert _defining(r"\bAnyAgentSpec\b") == []
    (members, *_) = get_args(AgentSpec)
    assert {get_args(member)[0] for member in get_args(members)} == {LLMAgentSpec, SequentialAgentSpec, ToolAgentSpec}
