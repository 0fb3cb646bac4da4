"""Every tool of a test run observed, and mocked where the case says so.

A test asserts on the tools a run called (`expected_tool_calls`: name, parameters,
result) and may replace custom tools with the functions of a `tests/mocks/` module.
Both need to stand where the engine calls a tool, without changing the engine: for each
run the runner builds a copy of the project (`instrumented_project`) whose tools are
wrappers. A wrapper records the call, then answers with the mock, or refuses (under
`strict_mocks`), or calls the real tool as the engine would have: in a thread, or for an
`isolation: process` agent in its own limited process (the wrapper runs that process
itself, since the engine only sees an in-process async function now).

Predefined tools (refs without a module, `trigger_agent`…) are never mocked and exempt
from `strict_mocks`, as on Connic; they are still recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from app.agent_tests.user_modules import MockModule, call_mock
from app.contracts.errors import FerryError, ToolError
from app.engine.isolation import ProcessIsolation
from app.project.models import AgentSpec
from app.project.project import Project
from app.project.tooldef import ToolDef


@dataclass
class ToolCallRecord:
    """One call of a tool during a run, as the assertions see it."""

    ref: str  # documents.parse_pdf
    name: str  # parse_pdf: the name the model used
    params: dict[str, Any]
    result: Any = None
    error: str | None = None  # the call raised (its result is then unknown)
    mocked: bool = False
    run_id: str | None = None  # the run that made the call: a parent's or a triggered child's

    def named(self, name: str) -> bool:
        """An expectation names a tool by its ref or by the name the model saw."""
        return name in (self.ref, self.name)


@dataclass
class ToolRecorder:
    """What one run's tools did; `violations` fail the run whatever it returned."""

    calls: list[ToolCallRecord] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ToolDoubles:
    """How one case treats custom tools."""

    mocks: MockModule | None = None
    strict_mocks: bool = False


def mockable(tool: ToolDef) -> bool:
    """A custom file tool (`module.func`); predefined tools always run for real."""
    return "." in tool.ref


def instrumented_project(
    project: Project, recorder: ToolRecorder, doubles: ToolDoubles, isolation: ProcessIsolation
) -> Project:
    """The project with every agent's tools wrapped for one run."""
    agents: dict[str, AgentSpec] = {}
    for name, spec in project.agents.items():
        tools = tuple(_wrapped(tool, spec, project, recorder, doubles, isolation) for tool in spec.resolved_tools)
        copy = spec.model_copy(update={"isolation": "inline"})  # the wrapper isolates the real call itself
        copy._resolved_tools = tools
        agents[name] = copy
    return replace(project, agents=MappingProxyType(agents))


def _wrapped(
    tool: ToolDef,
    agent: AgentSpec,
    project: Project,
    recorder: ToolRecorder,
    doubles: ToolDoubles,
    isolation: ProcessIsolation,
) -> ToolDef:
    mock = doubles.mocks.for_tool(tool.ref) if doubles.mocks is not None and mockable(tool) else None
    refuse = mock is None and doubles.strict_mocks and mockable(tool)
    in_process = agent.isolation == "process"

    async def call(**kwargs: Any) -> Any:
        context = kwargs.pop("context", None)
        run_id = context.get("run_id") if isinstance(context, dict) else None
        record = ToolCallRecord(
            ref=tool.ref, name=tool.name, params=dict(kwargs), mocked=mock is not None, run_id=run_id
        )
        recorder.calls.append(record)
        try:
            if mock is not None:
                value = await call_mock(mock, tool.ref, dict(kwargs), context if context is not None else {})
            elif refuse:
                where = doubles.mocks.rel if doubles.mocks is not None else "no mocks module"
                message = f"strict_mocks: {tool.ref} has no mock ({where}), so it was not run"
                recorder.violations.append(message)
                raise ToolError(message, tool.name)
            elif in_process:
                value = await isolation.call(
                    tool_name=tool.name,
                    ref=tool.ref,
                    project_root=project.root,
                    kwargs=kwargs,
                    context=context if tool.takes_context else None,
                    timeout=agent.tool_timeout,
                )
            else:
                value = await _call_real(tool, kwargs, context)
        except FerryError as exc:
            record.error = exc.message
            raise
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        record.result = value
        return value

    call.__name__ = tool.name
    call.__doc__ = tool.func.__doc__
    secret = getattr(tool.func, "secret_arguments", None)
    if secret is not None:
        call.secret_arguments = secret  # type: ignore[attr-defined]  # spans keep masking them
    return replace(tool, func=call, is_async=True, takes_context=True)


async def _call_real(tool: ToolDef, kwargs: Mapping[str, Any], context: Any) -> Any:
    arguments = {**kwargs, "context": context} if tool.takes_context else dict(kwargs)
    if tool.is_async:
        return await tool.func(**arguments)
    return await asyncio.to_thread(tool.func, **arguments)  # the run's context variables go along
