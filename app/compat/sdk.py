"""Connic SDK classes the engine checks for, without importing the SDK for it.

`StopProcessing` (end the run, completed), `AbortTool` (skip this tool call) and
`ToolFile` (a file a tool returns) reach the engine only from user code: middleware,
tools and hooks that imported `connic` to make them. While the SDK is not loaded nothing
can raise or return them, so each lookup below gives the class, or no class at all (an
empty tuple: `except ()` and `isinstance(x, ())` match nothing), and a worker whose
project never imports `connic` does not load it. Each lookup is one dict read; `except`
clauses evaluate theirs only when an exception is on its way.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connic.core import AbortTool, StopProcessing, ToolFile

_CORE = "connic.core"


def _loaded(name: str) -> tuple[Any, ...]:
    """`(connic.core.<name>,)` once the SDK is loaded, else `()`."""
    core = sys.modules.get(_CORE)
    return (getattr(core, name),) if core is not None else ()


def stop_processing() -> tuple[type[StopProcessing], ...]:
    return _loaded("StopProcessing")


def abort_tool() -> tuple[type[AbortTool], ...]:
    return _loaded("AbortTool")


def tool_file() -> tuple[type[ToolFile], ...]:
    return _loaded("ToolFile")


def with_control_flow(*classes: type[BaseException]) -> tuple[type[BaseException], ...]:
    """`classes` and the SDK's exceptions that end a run or skip a call (`StopProcessing`,
    `AbortTool`) once it is loaded, for an `except` that lets them all through."""
    return (*classes, *stop_processing(), *abort_tool())
