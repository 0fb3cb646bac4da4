"""What `ferry run` prints on stderr: the live trace, the summary, and tool threads left behind.

A sync tool runs on a thread of the engine's pool, and a thread cannot be killed: past
its `tool_timeout` the run moves on while the thread keeps running, and the process
cannot exit before it ends. `LingeringTools` says which tool it waits for and lets
Ctrl-C leave at once instead of hanging silently.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from app.cli.process_main import EXIT_INTERRUPTED, exit_now
from app.contracts import RunResult, SpanEvent, SpanKind
from app.contracts.errors import ErrorCategory
from app.contracts.money import format_usd
from app.contracts.spans import SpanAttr

#: `thread_name_prefix` of the engine's tool pool (app/engine/tools.py).
TOOL_THREAD_PREFIX = "ferry-tool"
_GRACE_SECONDS = 0.5


class TracePrinter:
    """One line per finished span: kind, name, duration, then tokens, cost, wait and error."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, span: SpanEvent) -> None:
        details = [*_usage_details(span.attributes)]
        if SpanAttr.WAIT_SECONDS in span.attributes:
            details.append(f"wait={span.attributes[SpanAttr.WAIT_SECONDS]}s")
        if SpanAttr.ERROR_CATEGORY in span.attributes:
            details.append(f"error={span.attributes[SpanAttr.ERROR_CATEGORY]}")
        line = f"{span.kind.value:<17} {span.name:<44} {span.duration_ms:>9.1f} ms  {' '.join(details)}"
        print(line.rstrip(), file=self.stream, flush=True)


def _usage_details(attrs: dict[str, object]) -> list[str]:
    """`tokens=… cost=$…`, left out where no model was called (a tool agent's run)."""
    total = attrs.get(SpanAttr.TOTAL_TOKENS)
    if total is None and SpanAttr.PROMPT_TOKENS in attrs:
        total = _int(attrs[SpanAttr.PROMPT_TOKENS]) + _int(attrs.get(SpanAttr.COMPLETION_TOKENS, 0))
    cost = attrs.get(SpanAttr.COST_USD)
    if not total and not cost:
        return []
    details = [f"tokens={total}"] if total is not None else []
    if isinstance(cost, int | float):
        details.append(f"cost={format_usd(cost)}")
    return details


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def summary_line(result: RunResult) -> str:
    """`completed in 469 ms; 7 tokens (…), cost $0.00000285; 1 LLM call(s), 0 tool call(s)`."""
    usage = result.usage
    error = f" ({result.error.category.value}: {result.error.message})" if result.error else ""
    parts = []
    if usage.llm_calls or usage.total_tokens:
        parts.append(
            f"{usage.total_tokens} tokens ({usage.prompt_tokens} prompt + {usage.completion_tokens} completion), "
            f"cost {'unknown' if usage.cost_usd is None else format_usd(usage.cost_usd)}"
        )
    parts.append(f"{usage.llm_calls} LLM call(s), {usage.tool_calls} tool call(s)")
    return f"{result.status.value}{error} in {result.duration_ms:.0f} ms; {'; '.join(parts)}"


class LingeringTools:
    """Span sink that notes tool calls which timed out; after the run, waits for their threads."""

    def __init__(self) -> None:
        self.timeouts: dict[str, float] = {}

    def __call__(self, span: SpanEvent) -> None:
        attrs = span.attributes
        if span.kind is SpanKind.TOOL_CALL and attrs.get(SpanAttr.ERROR_CATEGORY) == ErrorCategory.TOOL_TIMEOUT:
            seconds = attrs.get(SpanAttr.ERROR_TIMEOUT_SECONDS)
            if isinstance(seconds, int | float) and isinstance(attrs.get(SpanAttr.TOOL), str):
                self.timeouts[str(attrs[SpanAttr.TOOL])] = float(seconds)

    def wait(self, stream: TextIO) -> None:
        """Block until every busy tool thread ends, saying which; Ctrl-C exits the process now."""
        if not self.timeouts:
            return  # no call of this run was left running: its pool is idle
        busy = busy_tool_threads()
        if not busy:
            return
        try:
            print(f"ferry: {self.waiting_message(list(busy.values()))}", file=stream, flush=True)
            for thread in busy:
                while thread.is_alive():
                    thread.join(0.2)  # short joins: Ctrl-C is delivered between them
        except KeyboardInterrupt:
            print("ferry: interrupted: quitting without waiting for the tool thread", file=stream)
            exit_now(EXIT_INTERRUPTED)

    def waiting_message(self, tools: list[str]) -> str:
        names = list(dict.fromkeys(tools))
        if len(names) == 1:
            limit = self.timeouts.get(names[0])
            after = f"its {limit:g}s timeout" if limit is not None else "its timeout"
            what = f"tool `{names[0]}` (still running in its thread after {after})"
        else:
            listed = ", ".join(
                f"`{name}`" + (f" ({self.timeouts[name]:g}s)" if name in self.timeouts else "") for name in names
            )
            what = f"tools {listed} (still running in their threads after their timeouts)"
        return f"waiting for {what}; Ctrl-C to quit now — use isolation: process to kill such tools"


def busy_tool_threads(grace: float = _GRACE_SECONDS) -> dict[threading.Thread, str]:
    """Tool-pool threads still running a call, each with the function it runs.

    An idle pool thread waits on its queue (and leaves once the pool is shut down); a
    busy one has a `_WorkItem.run` frame, whose callee is the tool. `grace` lets calls
    that are just returning finish first.
    """
    deadline = time.monotonic() + grace
    while True:
        busy = _running_calls()
        if not busy or time.monotonic() >= deadline:
            return busy
        time.sleep(0.05)


def _running_calls() -> dict[threading.Thread, str]:
    frames = sys._current_frames()  # the only way to see what another thread is running
    busy: dict[threading.Thread, str] = {}
    for thread in threading.enumerate():
        if not thread.name.startswith(TOOL_THREAD_PREFIX) or thread.ident is None:
            continue
        frame = frames.get(thread.ident)
        callee = None
        while frame is not None:
            if frame.f_code.co_qualname == "_WorkItem.run" and callee is not None:
                busy[thread] = callee.f_code.co_name
                break
            callee, frame = frame, frame.f_back
    return busy
