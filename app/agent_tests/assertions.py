"""Whether one run satisfies its case: the checks of the format, each failure in words.

- `expected_result`: the expression must hold over `output`, `error`, `status`, `input`
  and `context`; without one, the run must have completed.
- `expected_tool_calls`: a bare name must have been called; `{name: expression}` must
  hold for at least one of its calls, with `params`, `result` (only for a call that
  returned), `invocations` (how often that tool was called) and `context` bound.
- `expected_tool_call_order`: these tools were called in this relative order.
- `expected_no_tool_calls`: none of these was called.
- `approval_decisions` under `strict_approval_decisions`: Ferry raises no approval
  requests yet, so a scripted decision is never used and the strict flag fails the run.
A tool is named by its ref (`documents.parse_pdf`) or by the name the model saw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.agent_tests.expressions import evaluate, parsed_json, uses_name
from app.agent_tests.tool_doubles import ToolCallRecord

_SHOWN_CHARS = 160


@dataclass(frozen=True)
class RunObservation:
    """What one run did, as the assertions read it."""

    status: str
    output: Any
    error: str | None
    input: Mapping[str, Any]
    calls: Sequence[ToolCallRecord]
    context: Mapping[str, Any] = field(default_factory=dict)  # the builder's


def run_failures(observed: RunObservation, settings: Mapping[str, Any]) -> list[str]:
    """Every expectation of the case the run does not meet (empty: the run passed)."""
    failures: list[str] = []
    failures += _result_failures(observed, settings.get("expected_result"))
    for entry in settings.get("expected_tool_calls") or []:
        failure = _tool_call_failure(observed, entry)
        if failure:
            failures.append(failure)
    order = list(settings.get("expected_tool_call_order") or [])
    if order and not _in_order(order, observed.calls):
        failures.append(f"tool calls out of order: expected {' → '.join(order)}, called {_called(observed.calls)}")
    for name in settings.get("expected_no_tool_calls") or []:
        count = sum(1 for call in observed.calls if call.named(name))
        if count:
            failures.append(f"{name} was called {count} time(s) but must not be")
    decisions = settings.get("approval_decisions") or []
    if decisions and settings.get("strict_approval_decisions"):
        failures.append(
            f"strict_approval_decisions: {len(decisions)} scripted decision(s) unused "
            "(Ferry does not raise approval requests yet)"
        )
    return failures


def _result_failures(observed: RunObservation, expression: str | None) -> list[str]:
    if not expression:
        if observed.status == "completed":
            return []
        return [f"the run ended {observed.status}{_error_suffix(observed.error)}; expected completed"]
    names = {
        "output": parsed_json(observed.output),
        "error": observed.error,
        "status": observed.status,
        "input": observed.input,
        "context": observed.context,
    }
    verdict = evaluate(expression, names)
    if verdict.holds:
        return []
    if verdict.error is not None:
        return [f"expected_result `{expression}` could not be evaluated: {verdict.error} ({_state(observed)})"]
    return [f"expected_result `{expression}` is false ({_state(observed)})"]


def _tool_call_failure(observed: RunObservation, entry: str | Mapping[str, str]) -> str | None:
    if isinstance(entry, str):
        name, expression = entry, None
    else:
        ((name, expression),) = entry.items()
    calls = [call for call in observed.calls if call.named(name)]
    if not calls:
        return f"{name} was never called (called: {_called(observed.calls)})"
    if expression is None:
        return None
    reads_result = uses_name(expression, "result")
    reasons: list[str] = []
    for call in calls:
        names: dict[str, Any] = {"params": call.params, "invocations": len(calls), "context": observed.context}
        if call.error is None:
            names["result"] = parsed_json(call.result)
        elif reads_result:
            continue  # a call without a result never matches a predicate on it
        verdict = evaluate(expression, names)
        if verdict.holds:
            return None
        if verdict.error is not None:
            reasons.append(verdict.error)
    why = f": {reasons[0]}" if reasons else ""
    return f"{name}: no call satisfies `{expression}` ({len(calls)} call(s){why})"


def _in_order(expected: list[str], calls: Sequence[ToolCallRecord]) -> bool:
    position = 0
    for call in calls:
        if position < len(expected) and call.named(expected[position]):
            position += 1
    return position == len(expected)


def _called(calls: Sequence[ToolCallRecord]) -> str:
    return "[" + ", ".join(call.ref for call in calls) + "]" if calls else "no tools"


def _error_suffix(error: str | None) -> str:
    return f" ({error})" if error else ""


def _state(observed: RunObservation) -> str:
    shown = json.dumps(parsed_json(observed.output), ensure_ascii=False, default=str)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[: _SHOWN_CHARS - 1] + "…"
    return f"status {observed.status}{_error_suffix(observed.error)}, output {shown}"
