"""200 concurrent runs in one engine share no state: no tenant ever sees another's data."""

from __future__ import annotations

import asyncio
import json

from app.contracts import RunRequest, RunStatus, SpanEvent
from app.devstack.llm_sim import Match, Rule, ToolCall, ToolCallsReply

TOOLS = {
    "vault": '''
        import asyncio
        import random

        async def reveal(label: str, context: dict) -> dict:
            """Echo this run's tenant secret (what a CRM tool reading per-tenant credentials does)."""
            await asyncio.sleep(random.random() * 0.05)  # interleave the runs
            return {"tenant": context["tenant"], "secret": context["secret"], "label": label}
    '''
}
RUNS = 200
TENANTS = 7


async def test_interleaved_tenants_see_no_cross_talk(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "v", "tools": ["vault.reveal"], "system_prompt": "Serve tenant {tenant}."}], tools=TOOLS
    )
    # First turn: call the tool; after the tool result, no rule matches and the simulator
    # answers with "Simulated reply to: <last user text>", i.e. this run's own input.
    sim.set_rules(
        [
            Rule(
                match=Match(assistant_turns=0),
                reply=ToolCallsReply(calls=[ToolCall(name="reveal", arguments={"label": "x"})]),
            )
        ]
    )
    sim.latency_ms = 5
    engine = engine_factory(project)
    spans: dict[str, list[SpanEvent]] = {}

    def request(i: int) -> RunRequest:
        tenant = f"tenant-{i % TENANTS}"
        return RunRequest.new(
            "v", f"run {i} for {tenant}", tenant=tenant, context={"secret": f"s3cr3t-{tenant}-{i % TENANTS}"}
        )

    requests = [request(i) for i in range(RUNS)]
    for r in requests:
        spans[r.run_id] = []
    results = await asyncio.gather(*(engine.run(r, on_span=spans[r.run_id].append) for r in requests))

    assert sim.peak_in_flight > 20  # the runs really were interleaved
    for req, result in zip(requests, results, strict=True):
        assert result.status is RunStatus.COMPLETED, result.error
        assert result.output == f"Simulated reply to: {req.input['message']}"
        assert result.tenant == req.tenant
        assert result.usage.llm_calls == 2 and result.usage.tool_calls == 1
        assert {s.run_id for s in spans[req.run_id]} == {req.run_id}
        assert len({s.trace_id for s in spans[req.run_id]}) == 1

    # Every second request carries one run's conversation: its system prompt, its input and
    # its tool result must all belong to the same tenant.
    checked = 0
    for recorded in sim.requests:
        messages = recorded.body["messages"]
        tool_messages = [m for m in messages if m["role"] == "tool"]
        if not tool_messages:
            continue
        tenant = messages[0]["content"].removeprefix("Serve tenant ").rstrip(".")
        assert messages[1]["content"].endswith(f"for {tenant}")
        assert len(tool_messages) == 1
        echoed = json.loads(tool_messages[0]["content"])
        assert echoed["tenant"] == tenant
        assert echoed["secret"] == f"s3cr3t-{tenant}-{tenant.removeprefix('tenant-')}"
        checked += 1
    assert checked == RUNS
