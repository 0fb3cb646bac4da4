"""Middleware, tool hooks and custom guardrails replaced by a case's mocks module, as on Connic.

A function of the mocks module replaces a phase the project configures:

    middleware/<agent>.py  before / after / cleanup   ← middleware_before|after|cleanup
    hooks/<agent>.py       before / after             ← mock_<tool ladder>_hook_before|after,
                                                        down to mock_hook_before|after
    guardrails/<name>.py   a custom rule's check      ← guardrail_<direction>_<name>,
                                                        guardrail_<direction>, guardrail

each called with the real phase's arguments. A phase without a replacement runs for real,
unless the case sets the phase's strict flag (`strict_middleware_mocks`,
`strict_hook_mocks`, `strict_guardrail_mocks`): then it fails the run instead of running.
A phase the project does not configure is never added and is exempt from the flags.

The replacements go into the run's own copy of the project (`Project.middleware`,
`tool_hooks`, `guardrails`); the engine runs them as it runs the real ones. A custom
guardrail replaced differently per direction is renamed `<name>[<direction>]` in that
copy, since the engine looks custom checks up by name alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from connic.core import Middleware, ToolHook

from app.agent_tests.tool_doubles import ToolRecorder
from app.agent_tests.user_modules import MockModule
from app.compat.user_code import call_user
from app.project.models import AgentSpec, GuardrailRuleSpec, GuardrailsSpec
from app.project.project import Project

_MIDDLEWARE_PHASES = ("before", "after", "cleanup")
_HOOK_PHASES = ("before", "after")
_DIRECTIONS = ("input", "output")


@dataclass(frozen=True)
class LifecycleDoubles:
    mocks: MockModule | None = None
    strict_middleware: bool = False
    strict_hooks: bool = False
    strict_guardrails: bool = False

    @property
    def active(self) -> bool:
        return self.mocks is not None or self.strict_middleware or self.strict_hooks or self.strict_guardrails


def with_lifecycle_doubles(project: Project, recorder: ToolRecorder, doubles: LifecycleDoubles) -> Project:
    if not doubles.active:
        return project
    middleware = {agent: _middleware(agent, real, recorder, doubles) for agent, real in project.middleware.items()}
    hooks = {
        agent: _hooks(project.agents.get(agent), real, recorder, doubles) for agent, real in project.tool_hooks.items()
    }
    agents, guardrails = _guardrails(project, recorder, doubles)
    return replace(
        project,
        agents=MappingProxyType(agents),
        middleware=MappingProxyType(middleware),
        tool_hooks=MappingProxyType(hooks),
        guardrails=MappingProxyType(guardrails),
    )


def _refusal(recorder: ToolRecorder, message: str) -> Callable[..., Any]:
    def refuse(*args: Any) -> Any:
        recorder.violations.append(message)
        raise RuntimeError(message)

    return refuse


def _middleware(agent: str, real: Middleware, recorder: ToolRecorder, doubles: LifecycleDoubles) -> Middleware:
    phases: dict[str, Any] = {}
    for phase in _MIDDLEWARE_PHASES:
        function = getattr(real, phase)
        mock = doubles.mocks.for_middleware(phase) if doubles.mocks is not None else None
        if function is None or mock is not None:
            phases[phase] = mock if function is not None else None
        elif doubles.strict_middleware:
            message = f"strict_middleware_mocks: middleware/{agent}.py {phase}() has no middleware_{phase} mock"
            phases[phase] = _refusal(recorder, message)
        else:
            phases[phase] = function
    return Middleware(**phases)


def _hooks(agent: AgentSpec | None, real: ToolHook, recorder: ToolRecorder, doubles: LifecycleDoubles) -> ToolHook:
    refs = {tool.name: tool.ref for tool in agent.resolved_tools} if agent is not None else {}
    phases: dict[str, Any] = {}
    for phase in _HOOK_PHASES:
        function = getattr(real, phase)
        phases[phase] = None if function is None else _hook_dispatch(phase, function, refs, recorder, doubles)
    return ToolHook(**phases)


def _hook_dispatch(
    phase: str,
    real: Callable[..., Any],
    refs: dict[str, str],
    recorder: ToolRecorder,
    doubles: LifecycleDoubles,
) -> Callable[..., Any]:
    """The hook the engine calls: per tool, the most specific mock, or a refusal, or the real hook."""

    async def hook(tool_name: str, *args: Any) -> Any:
        *arguments, context = args  # (params, context) before; (params, result, context) after
        ref = refs.get(tool_name, tool_name)
        mock = doubles.mocks.for_hook(ref, phase) if doubles.mocks is not None else None
        if mock is None and doubles.strict_hooks:
            message = f"strict_hook_mocks: the {phase} hook of {ref} has no mock"
            recorder.violations.append(message)
            raise RuntimeError(message)
        return await call_user(mock or real, tool_name, *arguments, context=context)

    return hook


def _guardrails(
    project: Project, recorder: ToolRecorder, doubles: LifecycleDoubles
) -> tuple[dict[str, AgentSpec], dict[str, Callable[..., Any]]]:
    checks: dict[str, Callable[..., Any]] = dict(project.guardrails)
    agents: dict[str, AgentSpec] = dict(project.agents)
    for name, spec in project.agents.items():
        rules: GuardrailsSpec | None = getattr(spec, "guardrails", None)
        if rules is None:
            continue
        renamed: dict[str, tuple[GuardrailRuleSpec, ...]] = {}
        for direction in _DIRECTIONS:
            renamed[direction] = tuple(
                _guardrail_rule(rule, direction, checks, project, recorder, doubles)
                for rule in getattr(rules, direction)
            )
        agents[name] = spec.model_copy(update={"guardrails": rules.model_copy(update=renamed)})
    return agents, checks


def _guardrail_rule(
    rule: GuardrailRuleSpec,
    direction: str,
    checks: dict[str, Callable[..., Any]],
    project: Project,
    recorder: ToolRecorder,
    doubles: LifecycleDoubles,
) -> GuardrailRuleSpec:
    if rule.type != "custom" or not rule.name or rule.name not in project.guardrails:
        return rule  # built-in kinds always run for real; an unloaded check is exempt
    mock = doubles.mocks.for_guardrail(direction, rule.name) if doubles.mocks is not None else None
    if mock is None and not doubles.strict_guardrails:
        return rule
    replacement = mock or _refusal(
        recorder, f"strict_guardrail_mocks: the {direction} guardrail {rule.name!r} has no mock"
    )
    key = f"{rule.name}[{direction}]"
    checks[key] = replacement
    return rule.model_copy(update={"name": key})
