from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import Rule, TextReply, ToolCall, ToolCallsReply, Match


async def test_text_answer_and_tool_call(make_project, sim, engine_factory):
    project = make_project(
        [{"name": "echo", "tools": ["util.shout"], "system_prompt": "Hello {tenant} {unknown}"}],
        tools={"util": '''
            def shout(text: str) -> str:
                """Shout.

                Args:
                    text: what to shout
                """
                return text.upper()
        '''},
    )
    sim.set_rules([
        Rule(match=Match(has_tool_result="shout"), reply=TextReply(text="done")),
        Rule(reply=ToolCallsReply(calls=[ToolCall(name="shout", arguments={"text": "hi"})])),
    ])
    engine = engine_factory(project)
    spans = []
    result = await engine.run(RunRequest.new("echo", "hello", tenant="acme"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED, result
    assert result.output == "done"
    assert result.usage.llm_calls == 2 and result.usage.tool_calls == 1
    body = sim.requests[0].body
    assert body["messages"][0]["content"] == "Hello acme {unknown}"
    assert sim.requests[1].body["messages"][-1]["content"] == "HI"
    print([ (s.kind, s.name, s.parent_span_id) for s in spans])
