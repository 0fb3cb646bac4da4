"""An agent's `mcp_servers`: their tools offered to the model like the agent's own.

Each server is reached with the official `mcp` SDK's `Client`: Connic's `url` is
streamable HTTP (with `headers`); Ferry adds `command` / `args` / `env` for a server
started over stdio. `${VAR}` in any of them is filled from the worker's environment. The servers of a run are
connected when the run starts, inside the run's own task (the SDK's connections are
task-bound), listed, and closed when the run ends; a run therefore sees the server's
tools as they are at its start. `tools:` of a server keeps only the tools it names,
`condition` offers the server only when it holds (as a conditional tool), `discoverable`
makes its tools discoverable (found through `search_tools`, see discovery.py), `optional`
lets the run go on without a server it cannot reach (else the run fails `tool_error`).

A tool call goes through the engine like any other: the agent's hooks, `tool_timeout`,
the `tool_call` span. A server's error result is the call's tool error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from app.contracts.errors import ToolError
from app.project.conditions import evaluate_condition
from app.project.models import McpServerSpec
from app.project.tooldef import ToolDef

log = logging.getLogger(__name__)

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _filled(value: str) -> str:
    return _VARIABLE.sub(lambda m: os.environ.get(m.group(1), ""), value)


def _client_for(server: McpServerSpec) -> Any:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    if server.command is not None:
        env = {key: _filled(value) for key, value in (server.env or {}).items()} or None
        args = [_filled(arg) for arg in server.args]
        return Client(StdioServerParameters(command=_filled(server.command), args=args, env=env))
    assert server.url is not None
    headers = {key: _filled(value) for key, value in (server.headers or {}).items()}
    http = create_mcp_http_client(headers=headers or None)
    return Client(streamable_http_client(_filled(server.url), http_client=http))


def _result(server: str, name: str, result: Any) -> Any:
    texts = [getattr(part, "text", "") for part in getattr(result, "content", []) or []]
    if getattr(result, "is_error", False):
        raise ToolError(f"MCP server {server!r}: {' '.join(t for t in texts if t) or 'the tool failed'}", name)
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured
    return "\n".join(t for t in texts if t)


def _tool_def(server: str, client: Any, tool: Any) -> ToolDef:
    name = str(tool.name)
    schema = dict(getattr(tool, "input_schema", None) or {"type": "object", "properties": {}})
    schema.pop("title", None)

    async def call(**arguments: Any) -> Any:
        try:
            result = await client.call_tool(name, arguments)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"MCP server {server!r} failed: {type(exc).__name__}: {exc}", name) from exc
        return _result(server, name, result)

    description = str(getattr(tool, "description", None) or "")
    return ToolDef(
        name=name,
        ref=f"mcp:{server}.{name}",
        func=call,
        schema={"type": "function", "function": {"name": name, "description": description, "parameters": schema}},
        description=description,
        is_async=True,
        runs_inline=True,
    )


@contextlib.asynccontextmanager
async def mcp_tools(
    servers: Sequence[McpServerSpec], payload: Mapping[str, Any], context: Mapping[str, Any]
) -> AsyncIterator[list[ToolDef]]:
    """The tools of every server of the agent that applies to this run, connected until exit."""
    tools: list[ToolDef] = []
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            if server.condition is not None and not evaluate_condition(server.condition, payload, context):
                continue
            try:
                client = await stack.enter_async_context(_client_for(server))
                listed = await client.list_tools()
            except Exception as exc:  # the SDK raises transport, protocol and OS errors alike
                reason = f"MCP server {server.name!r} could not be reached: {type(exc).__name__}: {exc}"
                if server.optional:
                    log.warning("%s — its tools are not offered to this run", reason)
                    continue
                raise ToolError(reason, server.name) from exc
            wanted = set(server.tools) if server.tools is not None else None
            tools.extend(
                replace(_tool_def(server.name, client, tool), discoverable=server.discoverable)
                for tool in listed.tools
                if wanted is None or tool.name in wanted
            )
        yield tools
