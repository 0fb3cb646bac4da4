"""What the cross-agent checks need of an agent, readable even when the agent is invalid.

An agent whose `temperature` is out of range has no spec, but its tool refs, schema
name and stages can still be checked; reading them from the raw data lets one lint
report every mistake instead of hiding the tool errors behind the range error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from app.project.agent_files import AgentSource
from app.project.models import AGENT_NAME_PATTERN, LLMAgentSpec, SequentialAgentSpec, ToolAgentSpec, ToolEntry


@dataclass
class AgentView:
    source: AgentSource
    name: str | None
    kind: str
    tools: list[tuple[int, ToolEntry]] = field(default_factory=list)
    output_schema: str | None = None
    stages: list[tuple[int, str]] = field(default_factory=list)
    tool_name: str | None = None
    discoverable: list[tuple[int, ToolEntry]] = field(default_factory=list)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def view_of(source: AgentSource) -> AgentView:
    spec = source.spec
    if isinstance(spec, LLMAgentSpec):
        view = AgentView(source, spec.name, "llm", list(enumerate(spec.tools)), spec.output_schema)
        view.discoverable = list(enumerate(spec.discoverable_tools))
        return view
    if isinstance(spec, SequentialAgentSpec):
        return AgentView(source, spec.name, "sequential", stages=list(enumerate(spec.agents)))
    if isinstance(spec, ToolAgentSpec):
        return AgentView(source, spec.name, "tool", tool_name=spec.tool_name)
    data = source.data
    name = _str(data.get("name"))
    view = AgentView(source, name if name and AGENT_NAME_PATTERN.match(name) else None, str(data.get("type", "llm")))
    if view.kind == "llm":
        for key, entries in (("tools", view.tools), ("discoverable_tools", view.discoverable)):
            raw_tools = data.get(key)
            for index, raw in enumerate(raw_tools if isinstance(raw_tools, list) else []):
                try:
                    entries.append((index, ToolEntry.model_validate(raw)))
                except ValidationError:
                    continue  # reported by the spec validation
        view.output_schema = _str(data.get("output_schema"))
    elif view.kind == "sequential":
        stages = data.get("agents")
        view.stages = [(i, s) for i, s in enumerate(stages if isinstance(stages, list) else []) if isinstance(s, str)]
    elif view.kind == "tool":
        view.tool_name = _str(data.get("tool_name"))
    return view
