"""Tool calls: look up in the agent's own list, validate arguments, run, time out, report.

A tool is only ever looked up among the tools the agent declares (after conditions):
a model asking for anything else gets a tool error back as the tool message, and
nothing is imported or called. A tool's failure never fails the run: it becomes the
tool message (`{"error": ...}`) the model sees, and is counted in the tool_call span as
`tool_error` / `tool_timeout` (AGENT_FORMAT.md "Tools").

Where a call runs:
- async tools on the event loop, cancelled on `tool_timeout`;
- sync tools on the engine's thread pool (a thread cannot be killed: on timeout the
  run moves on and the thread finishes in the background — use `isolation: process`
  for tools that may hang);
- `isolation: process` tools in a fresh limited subprocess (see isolation.py).
The `context` parameter is always the run's own context: a `context` argument written
by the model is dropped, so no model output can impersonate another tenant.

The tool_call span carries the model's arguments (`tool.arguments`, JSON) with every
secret masked: arguments whose names say secret (api_key, password, token…), the
arguments a tool declares secret, and then the span redactor's own rules. A tool
declares secret arguments with an attribute on its function, no import needed:

    def charge(card_number: str, amount: float) -> dict: ...
    charge.secret_arguments = ["card_number"]   # or True: no argument is ever shown
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
from collections.abc import Awaitable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from app.compat.hooks import after_tool, before_tool
from app.compat.runtime import for_model
from app.compat.sdk import abort_tool, with_control_flow
from app.contracts import SpanKind
from app.contracts.errors import FerryError, ToolError, ToolTimeoutError
from app.contracts.spans import TOOL_ARGUMENTS_CHARS, SpanAttr
from app.engine.isolation import ProcessIsolation
from app.engine.journal import tool_step
from app.engine.model import ToolCall
from app.observability.redaction import REDACTED, Redactor
from app.observability.tracing import RunTracer
from app.project.tooldef import ToolDef

if TYPE_CHECKING:
    from connic.core import ToolHook
    from jsonschema.protocols import Validator


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    content: str  # the tool message the model receives
    value: Any = None
    error: FerryError | None = None

    def message(self) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": self.call.id, "name": self.call.name, "content": self.content}


class ToolExecutor:
    """Engine-wide: the thread pool and process launcher shared by all runs' tool calls."""

    def __init__(self, *, threads: int, isolation: ProcessIsolation, project_root: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ferry-tool")
        self._isolation = isolation
        self._project_root = project_root
        self._arguments = ArgumentChecks()

    async def invoke(
        self,
        tool: ToolDef,
        kwargs: dict[str, Any],
        *,
        context: dict[str, Any],
        timeout: float | None,
        isolation: str,
    ) -> Any:
        """Call `tool`; raise ToolError / ToolTimeoutError on failure."""
        ctx = context if tool.takes_context else None
        if isolation == "process" and not tool.runs_inline:
            return await self._isolation.call(
                tool_name=tool.name,
                ref=tool.ref,
                project_root=self._project_root,
                kwargs=kwargs,
                context=ctx,
                timeout=timeout,
            )
        call_kwargs = {**kwargs, "context": ctx} if ctx is not None else kwargs
        try:
            async with asyncio.timeout(timeout):
                if tool.is_async:
                    return await tool.func(**call_kwargs)
                loop = asyncio.get_running_loop()
                # The run's context variables (its log fields, its open span) go with the call.
                call = functools.partial(tool.func, **call_kwargs)
                return await loop.run_in_executor(self._pool, contextvars.copy_context().run, call)
        except TimeoutError:
            raise ToolTimeoutError(tool.name, timeout or 0.0) from None
        except with_control_flow(FerryError):  # Connic's StopProcessing and AbortTool: handled by the caller
            raise
        except Exception as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}", tool.name) from exc

    async def call(
        self,
        tools: Mapping[str, ToolDef],
        call: ToolCall,
        *,
        context: dict[str, Any],
        timeout: float | None,
        isolation: str,
        tracer: RunTracer,
        hook: ToolHook | None = None,
    ) -> ToolOutcome:
        """One model-requested call, in a tool_call span, between the agent's tool hooks;
        never raises a tool failure (`StopProcessing` from a tool or hook ends the run)."""
        with tracer.span(SpanKind.TOOL_CALL, f"tool {call.name}", tool=call.name, tool__call_id=call.id) as span:
            try:
                tool = tools.get(call.name)
                if tool is None:
                    span.set(**{SpanAttr.TOOL_ARGUMENTS: traced_arguments(None, call.arguments)})
                    raise ToolError(
                        f"unknown tool {call.name!r}: this agent's tools are {sorted(tools) or 'none'}",
                        call.name,
                    )
                span.set(**{SpanAttr.TOOL_ARGUMENTS: traced_arguments(tool, call.arguments)})
                kwargs = parse_arguments(tool, call.arguments, self._arguments)
                journaled = tool_step(tracer.run_id, call)  # a journaled run: recorded result, idempotency key
                if journaled is not None and journaled.done is not None:
                    span.set(tool__replayed=True)
                    return ToolOutcome(call, journaled.done[0], value=journaled.done[1])
                context = journaled.context(context) if journaled is not None else context
                kwargs = await _hooked(before_tool(hook, call.name, kwargs, context), call.name, "before")
                value = await self.invoke(tool, kwargs, context=context, timeout=timeout, isolation=isolation)
                value = await _hooked(after_tool(hook, call.name, kwargs, value, context), call.name, "after")
                readable = for_model(value)  # bytes and Connic's ToolFile as the model can read them
                content = readable if isinstance(readable, str) else json.dumps(readable, default=str)
            except abort_tool() as abort:  # the model gets the hook's result; the trace shows an error
                aborted = ToolError(f"skipped by a tool hook (AbortTool): {abort.result}", call.name)
                span.fail(aborted)
                span.set(tool__aborted=True)
                result = abort.result if isinstance(abort.result, str) else json.dumps(abort.result, default=str)
                return ToolOutcome(call, result, value=abort.result, error=aborted)
            except ToolError as exc:
                span.fail(exc)
                return ToolOutcome(call, json.dumps({"error": exc.message}), error=exc)
            except (TypeError, ValueError, RecursionError) as exc:  # an unserialisable result
                error = ToolError(f"the result of {call.name!r} is not JSON-serialisable: {exc}", call.name)
                span.fail(error)
                return ToolOutcome(call, json.dumps({"error": error.message}), error=error)
            span.set(tool__result_chars=len(content))
            if journaled is not None:
                await journaled.record(content, value)  # durable before the model sees it
            return ToolOutcome(call, content, value=value)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _hooked(step: Awaitable[Any], tool_name: str, which: str) -> Any:
    """A hook's outcome; an unexpected exception in it is the call's tool error."""
    try:
        return await step
    except with_control_flow(FerryError):
        raise
    except Exception as exc:
        raise ToolError(f"the {which} tool hook raised {type(exc).__name__}: {exc}", tool_name) from exc


class ArgumentChecks:
    """Each tool's argument validator, built at its first call and reused (building one is
    a third of a check's time). jsonschema is imported then: a worker whose agents call no
    tool does not load it (~2 MiB). Keyed by the schema object, kept alive by its entry, so
    a reloaded project's tool of the same name gets its own validator."""

    def __init__(self) -> None:
        self._validators: dict[int, tuple[Mapping[str, Any], Validator]] = {}

    def validator(self, tool: ToolDef) -> Validator:
        parameters = tool.parameters
        known = self._validators.get(id(parameters))
        if known is not None:
            return known[1]
        from jsonschema import Draft202012Validator

        made: Validator = Draft202012Validator(dict(parameters))
        self._validators[id(parameters)] = (parameters, made)
        return made


def parse_arguments(tool: ToolDef, arguments: str, checks: ArgumentChecks) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolError(f"arguments of {tool.name!r} are not valid JSON: {exc.msg}", tool.name) from None
    if not isinstance(parsed, dict):
        raise ToolError(f"arguments of {tool.name!r} must be a JSON object", tool.name)
    parsed.pop("context", None)
    from jsonschema import ValidationError

    try:
        checks.validator(tool).validate(parsed)
    except ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ToolError(f"invalid arguments for {tool.name!r} at {path}: {exc.message}", tool.name) from None
    return parsed


#: The attribute of a tool function naming its secret arguments (a list, or True for all).
SECRET_ARGUMENTS_ATTRIBUTE = "secret_arguments"
_KEY_RULES = Redactor()  # no values of its own: the key-name and credential-shape rules


def declared_secret_arguments(tool: ToolDef | None) -> frozenset[str] | Literal[True]:
    """The argument names `tool` declares secret, or True when it declares them all."""
    declared = getattr(tool.func, SECRET_ARGUMENTS_ATTRIBUTE, None) if tool is not None else None
    if declared is True:
        return True
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list | tuple | set | frozenset):
        return frozenset(str(name) for name in declared)
    return frozenset()


def traced_arguments(tool: ToolDef | None, arguments: str) -> str | None:
    """The model's arguments as a span shows them: secrets masked, clipped; None when
    the tool declares all of its arguments secret, or some and the text is no JSON object
    (nothing then tells the secret part from the rest)."""
    secret = declared_secret_arguments(tool)
    if secret is True:
        return None
    try:
        parsed: Any = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        if secret:
            return None
        text = _KEY_RULES.text(arguments) if parsed is None else json.dumps(_KEY_RULES.value(parsed), default=str)
    else:
        parsed.pop("context", None)
        masked = {key: REDACTED if key in secret else value for key, value in parsed.items()}
        text = json.dumps(_KEY_RULES.mapping(masked), ensure_ascii=False, default=str)
    return text if len(text) <= TOOL_ARGUMENTS_CHARS else text[: TOOL_ARGUMENTS_CHARS - 1] + "…"
