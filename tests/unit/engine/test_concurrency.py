"""200 concurrent runs in one engine share no state: no tenant ever sees another's data."""

from __future__ import annotations

import asyncio
import json

from app.contracts import RunRequest, RunStatus, SpanEvent
from app.engine import LLMRequest
from app.engine.testing import FunctionLLM, Reply, tool_call
from tests.unit.engine.conftest import tool_messages

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


class Model:
    """First turn: call the tool; after the tool result: echo this run's own input."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak_in_flight = 0

    async def __call__(self, request: LLMRequest) -> Reply:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)
        finally:
            self.in_flight -= 1
        if not tool_messages(request.messages):
            return Reply(tool_calls=[tool_call("reveal", {"label": "x"})])
        user = next(m["content"] for m in request.messages if m["role"] == "user")
        return Reply(text=f"Reply to: {user}")


async def test_interleaved_tenants_see_no_cross_talk(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "v", "tools": ["vault.reveal"], "system_prompt": "Serve tenant {tenant}."}], tools=TOOLS
    )
    model = Model()
    llm = FunctionLLM(model)
    engine = engine_for(project, llm)
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

    assert model.peak_in_flight > 20  # the runs really were interleaved
    for req, result in zip(requests, results, strict=True):
        assert result.status is RunStatus.COMPLETED, result.error
        assert result.output == f"Reply to: {req.input['message']}"
        assert result.tenant == req.tenant
        assert result.usage.llm_calls == 2 and result.usage.tool_calls == 1
        assert {s.run_id for s in spans[req.run_id]} == {req.run_id}
        assert len({s.trace_id for s in spans[req.run_id]}) == 1

    # Every second request carries one run's conversation: its system prompt, its input and
    # its tool result must all belong to the same tenant.
    checked = 0
    for recorded in llm.requests:
        messages = recorded.messages
        answers = tool_messages(messages)
        if not answers:
            continue
        tenant = messages[0]["content"].removeprefix("Serve tenant ").rstrip(".")
        assert messages[1]["content"].endswith(f"for {tenant}")
        assert len(answers) == 1
        echoed = json.loads(answers[0]["content"])
        assert echoed["tenant"] == tenant
        assert echoed["secret"] == f"s3cr3t-{tenant}-{tenant.removeprefix('tenant-')}"
        checked += 1
    assert checked == RUNS
    assert len(llm.requests) == 2 * RUNS
