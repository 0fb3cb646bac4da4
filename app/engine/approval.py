"""Tool calls that wait for a human: the engine's side of an agent's `approval:` block.

Before a model message's tool calls run, each is checked against the agent's approval
rules (app/project/approval.py). A call that needs approval and has no decision yet ends
the attempt with `ApprovalPending`: the run is parked (status `paused`, never on
`runs.results`) and holds no worker slot while a human decides. Its steps so far are in
its journal, so when the parked request comes back with the decision added
(`RunRequest.approvals`, by step `<llm step>.<call id>`), the run replays them, reaches
the same call, and goes on: approved, the tool runs (once: its result is journaled like
any other); rejected, the run fails (`on_rejection: fail`) or the model is told
(`continue`). No decision within the timeout counts as a rejection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from app.contracts import ApprovalDecision
from app.contracts.errors import ErrorCategory, FerryError, ToolError
from app.engine.model import ToolCall
from app.engine.tools import ToolOutcome, traced_arguments
from app.project.approval import ApprovalSpec
from app.project.tooldef import ToolDef


class ApprovalPending(FerryError):
    """A tool call needs a human decision; `details` is what the approver sees."""

    category = ErrorCategory.APPROVAL

    def __init__(self, tool: str, details: dict[str, Any]) -> None:
        super().__init__(f"waiting for a human to approve {tool}")
        self.details = details


class ApprovalRejectedError(FerryError):
    """A human rejected a tool call (or nobody decided in time) and the agent's rule is `fail`."""

    category = ErrorCategory.APPROVAL


def approval_step(llm_step: int, call: ToolCall) -> str:
    """The decision's key: the same on every attempt of the run (call ids are journaled)."""
    return f"{llm_step}.{call.id}"


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        parsed = json.loads(call.arguments) if call.arguments.strip() else {}
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _shown(tool: ToolDef | None, call: ToolCall) -> dict[str, Any]:
    """The arguments as an approver sees them: secrets masked, as in traces."""
    masked = traced_arguments(tool, call.arguments)
    try:
        parsed = json.loads(masked) if masked else {}
    except json.JSONDecodeError:
        return {"arguments": masked}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _refusal(decision: ApprovalDecision) -> str:
    if decision.timed_out:
        return "no one approved it in time"
    who = f" by {decision.by}" if decision.by and decision.by != "unknown" else ""
    return f"rejected{who}" + (f": {decision.reason}" if decision.reason else "")


def gate_calls(
    spec: ApprovalSpec | None,
    tools: Mapping[str, ToolDef],
    calls: Sequence[ToolCall],
    *,
    llm_step: int,
    context: Mapping[str, Any],
    approvals: Mapping[str, ApprovalDecision],
) -> dict[str, ToolOutcome]:
    """Outcomes decided by a human (rejections the model is told of), by call id; raises
    `ApprovalPending` for the first call still waiting, `ApprovalRejectedError` for a
    rejection that ends the run."""
    if spec is None or not spec.tools:
        return {}
    decided: dict[str, ToolOutcome] = {}
    for call in calls:
        tool = tools.get(call.name)
        if not spec.needs_approval(tool.ref if tool else call.name, call.name, _arguments(call), context):
            continue
        step = approval_step(llm_step, call)
        decision = approvals.get(step)
        if decision is None:
            raise ApprovalPending(
                call.name,
                {
                    "step": step,
                    "tool": call.name,
                    "call_id": call.id,
                    "arguments": _shown(tool, call),
                    "message": spec.message,
                    "timeout_s": spec.timeout,
                    "on_rejection": spec.on_rejection,
                },
            )
        if decision.approved:
            continue
        refusal = _refusal(decision)
        if spec.on_rejection == "fail":
            raise ApprovalRejectedError(f"{call.name}: {refusal}")
        error = ToolError(f"the call was not approved: {refusal}", call.name)
        content = json.dumps({"error": error.message, "approved": False})
        decided[call.id] = ToolOutcome(call, content, error=error)
    return decided
