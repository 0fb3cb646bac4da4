"""A resolved tool: what the engine needs to offer a function to the LLM and call it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolDef:
    """One callable tool of one agent.

    `name` is the bare function name the LLM sees (unique per agent); `ref` is the
    project-relative `module.func` it came from. `schema` is the OpenAI "function" tool
    format (`{"type": "function", "function": {"name", "description", "parameters"}}`),
    which litellm passes through to every provider. `takes_context` says whether the
    engine must pass the run's context dict as the `context` keyword.
    """

    name: str
    ref: str
    func: Callable[..., Any] = field(repr=False, compare=False)
    schema: Mapping[str, Any] = field(repr=False, compare=False)
    description: str = ""
    is_async: bool = False
    takes_context: bool = False
    condition: str | None = None
    #: Ferry's own tools (Connic's predefined ones, an MCP server's): always called in the
    #: run's process, whatever the agent's `isolation` (they are no module of the project).
    runs_inline: bool = False
    #: An MCP server's tool marked `discoverable`: found through search_tools, not offered upfront.
    discoverable: bool = False

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The JSON schema of the arguments the LLM must supply."""
        parameters: Mapping[str, Any] = self.schema["function"]["parameters"]
        return parameters
