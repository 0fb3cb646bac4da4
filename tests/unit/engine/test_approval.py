"""Tool calls that need a human: the run parks, and goes on as the decision says."""

from __future__ import annotations

import json

from app.contracts import ApprovalDecision, RunRequest, RunStatus
from app.engine.testing import Reply, ScriptedLLM, tool_call

TOOLS = {
    "orders": '''
        RUNS = []

        def refund(order_id: str, amount: float) -> dict:
            """Refund an order."""
            RUNS.append(order_id)
            return {"refunded": amount}

        def lookup(order_id: str) -> dict:
            """Look an order up."""
            return {"order_id": order_id, "status": "shipped"}
    '''
}


def _agent(**approval: object) -> dict[str, object]:
    return {
        "name": "desk",
        "tools": ["orders.refund", "orders.lookup"],
        "approval": {"tools": [{"orders.refund": "param.amount > 50"}], "message": "Refunds over 50 need a manager",
                     **approval},
    }  # fmt: skip


def _script(amount: float) -> list[object]:
    return [
        Reply(tool_calls=[tool_call("lookup", {"order_id": "A1"}, id="c1"),
                          tool_call("refund", {"order_id": "A1", "amount": amount}, id="c2")]),
        "done",
    ]  # fmt: skip


async def test_a_gated_call_parks_the_run_before_any_call_of_its_message_runs(make_project, engine_for) -> None:
    project = make_project([_agent()], tools=TOOLS)
    result = await engine_for(project, ScriptedLLM(_script(80))).run(RunRequest.new("desk", "refund A1"))
    assert result.status is RunStatus.PAUSED
    assert result.error is not None and result.error.category == "approval"
    details = result.error.details or {}
    assert (details["tool"], details["step"], details["arguments"]) == (
        "refund",
        "1.c2",
        {"order_id": "A1", "amount": 80},
    )
    assert details["message"] == "Refunds over 50 need a manager" and details["timeout_s"] == 3600
    assert result.usage.tool_calls == 0  # not even the lookup beside it ran


async def test_below_the_condition_nothing_waits(make_project, engine_for) -> None:
    project = make_project([_agent()], tools=TOOLS)
    result = await engine_for(project, ScriptedLLM(_script(20))).run(RunRequest.new("desk", "refund A1"))
    assert result.status is RunStatus.COMPLETED and result.usage.tool_calls == 2


async def test_an_approved_call_runs_and_the_run_completes(make_project, engine_for) -> None:
    project = make_project([_agent()], tools=TOOLS)
    approved = {"1.c2": ApprovalDecision(approved=True, by="maria")}
    llm = ScriptedLLM(_script(80))
    result = await engine_for(project, llm).run(RunRequest.new("desk", "refund A1", approvals=approved))
    assert result.status is RunStatus.COMPLETED and result.output == "done"
    tool_messages = [m for m in llm.requests[-1].messages if m["role"] == "tool"]
    assert json.loads(tool_messages[1]["content"]) == {"refunded": 80}


async def test_a_rejection_fails_the_run_or_is_told_to_the_model(make_project, engine_for) -> None:
    rejected = {"1.c2": ApprovalDecision(approved=False, by="maria", reason="not a valid claim")}
    failing = make_project([_agent()], tools=TOOLS)
    result = await engine_for(failing, ScriptedLLM(_script(80))).run(RunRequest.new("desk", "x", approvals=rejected))
    assert result.status is RunStatus.FAILED and result.error is not None
    assert result.error.category == "approval" and "rejected by maria: not a valid claim" in result.error.message


async def test_continue_tells_the_model_and_a_timeout_reads_as_a_rejection(make_project, engine_for) -> None:
    project = make_project([_agent(on_rejection="continue")], tools=TOOLS)
    timed_out = {"1.c2": ApprovalDecision(approved=False, timed_out=True)}
    llm = ScriptedLLM(_script(80))
    result = await engine_for(project, llm).run(RunRequest.new("desk", "x", approvals=timed_out))
    assert result.status is RunStatus.COMPLETED
    refused = [m for m in llm.requests[-1].messages if m["role"] == "tool"][1]
    assert json.loads(refused["content"]) == {
        "error": "the call was not approved: no one approved it in time",
        "approved": False,
    }
