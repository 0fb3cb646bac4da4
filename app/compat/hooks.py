"""Connic tool hooks around one tool call (SDK `connic.core.ToolHook`).

`before(tool_name, params, context)` may return new params (None keeps them), raise
`AbortTool(result)` — the tool is skipped, the model gets `result` as if the tool had
returned it, and the call is an error in the trace — or raise `StopProcessing` to end
the run. `after(tool_name, params, result, context)` may return a new result (None keeps
it). Any other exception from a hook is the tool call's error, which the model sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.compat.user_code import call_user
from app.contracts.errors import ToolError

if TYPE_CHECKING:
    from connic.core import ToolHook


async def before_tool(
    hook: ToolHook | None, tool_name: str, params: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    if hook is None or hook.before is None:
        return params
    changed = await call_user(hook.before, tool_name, params, context=context)
    if changed is None:
        return params
    if not isinstance(changed, Mapping):
        raise ToolError(f"the before hook returned {type(changed).__name__}, not the params dict", tool_name)
    return dict(changed)


async def after_tool(
    hook: ToolHook | None, tool_name: str, params: dict[str, Any], result: Any, context: dict[str, Any]
) -> Any:
    if hook is None or hook.after is None:
        return result
    changed = await call_user(hook.after, tool_name, params, result, context=context)
    return result if changed is None else changed
