"""A tool call round trip through litellm: the model's call over HTTP, the tool run by the
engine, its result back to the model in the next request. The engine's tool behaviour is
tested on the in-process fake (tests/unit/engine/test_tool_calls.py)."""

from __future__ import annotations

import json

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import Match, Rule, TextReply, ToolCall, ToolCallsReply

TOOLS = {
    "shop": '''
        def lookup(item: str, context: dict) -> dict:
            """Look up an item for this tenant."""
            return {"item": item, "tenant": context["tenant"]}
    '''
}


async def test_tool_calls_round_trip(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    sim.set_rules(
        [
            Rule(match=Match(has_tool_result="lookup"), reply=TextReply(text="done")),
            Rule(
                reply=ToolCallsReply(
                    calls=[
                        ToolCall(name="lookup", arguments={"item": "a"}),
                        ToolCall(name="lookup", arguments='{"item": "b", "context": {"tenant": "evil"}}'),
                    ]
                )
            ),
        ]
    )
    result = await engine_factory(project).run(RunRequest.new("shop", "go", tenant="acme"))
    assert result.status is RunStatus.COMPLETED and result.output == "done"
    assert result.usage.llm_calls == 2 and result.usage.tool_calls == 2
    assert [t["function"]["name"] for t in sim.requests[0].body["tools"]] == ["lookup"]
    assistant, *answers = sim.requests[1].body["messages"][-3:]
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_sim_1_0", "call_sim_1_1"]
    assert [(m["role"], m["tool_call_id"], json.loads(m["content"])) for m in answers] == [
        ("tool", "call_sim_1_0", {"item": "a", "tenant": "acme"}),
        ("tool", "call_sim_1_1", {"item": "b", "tenant": "acme"}),  # the model cannot set the context
    ]
