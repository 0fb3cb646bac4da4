"""A watched run streams its answer; what is left on screen is the run's output."""

from __future__ import annotations

import asyncio

from app.contracts import ChatTurn, RunRequest, RunStatus
from app.contracts.errors import LLMUnavailableError
from app.engine import FakeClock
from app.engine.model import LLMRequest, LLMResponse
from app.engine.streaming import watching
from app.engine.testing import FunctionLLM, Reply, ScriptedLLM, tool_call

TOOLS = {
    "shop": '''
        def lookup(item: str) -> dict:
            """Look up an item."""
            return {"item": item, "price": 3}
    '''
}


class Screen:
    """What a chat client shows: text appended, cleared on reset."""

    def __init__(self) -> None:
        self.shown = ""
        self.events: list[str] = []

    async def text(self, delta: str) -> None:
        self.shown += delta
        self.events.append(f"text:{delta}")

    async def reset(self) -> None:
        self.shown = ""
        self.events.append("reset")


async def _watched(engine, request: RunRequest, screen: Screen):
    with watching(screen):
        return await engine.run(request)


async def test_the_answer_streams_word_by_word_and_equals_the_output(make_project, engine_for) -> None:
    project = make_project([{"name": "chat"}])
    llm = ScriptedLLM(["the answer is forty two"])
    screen = Screen()
    result = await _watched(engine_for(project, llm), RunRequest.new("chat", "question?"), screen)
    assert result.status is RunStatus.COMPLETED
    assert screen.shown == result.output == "the answer is forty two"
    assert len(screen.events) == 5  # one piece per word
    assert llm.requests[0].on_text is not None


async def test_text_before_a_tool_call_is_reset_before_the_final_answer(make_project, engine_for) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    llm = ScriptedLLM([Reply(text="let me check", tool_calls=[tool_call("lookup", {"item": "pen"})]), "a pen costs 3"])
    screen = Screen()
    result = await _watched(engine_for(project, llm), RunRequest.new("shop", "price of a pen?"), screen)
    assert result.output == "a pen costs 3"
    assert screen.shown == "a pen costs 3"
    assert "reset" in screen.events


async def test_a_retried_attempt_starts_the_text_over(make_project, engine_for) -> None:
    project = make_project([{"name": "chat", "retry_options": {"attempts": 2, "initial_delay": 1, "max_delay": 1}}])
    calls = 0

    async def flaky(request: LLMRequest) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 1:
            assert request.on_text is not None
            await request.on_text("half an ans")  # the provider fails mid-answer
            raise LLMUnavailableError("connection reset mid-stream")
        return Reply(text="whole answer")

    screen = Screen()
    clock = FakeClock()  # the back-off between attempts passes at once
    engine = engine_for(project, FunctionLLM(flaky, clock=clock), clock=clock)
    result = await _watched(engine, RunRequest.new("chat", "hi"), screen)
    assert result.status is RunStatus.COMPLETED
    assert screen.shown == result.output == "whole answer"
    assert screen.events[:2] == ["text:half an ans", "reset"]


async def test_a_client_that_cannot_stream_shows_the_whole_answer_at_once(make_project, engine_for) -> None:
    class Silent:
        async def complete(self, request: LLMRequest) -> LLMResponse:
            return LLMResponse(model=request.model, text="all at once", finish_reason="stop")

    project = make_project([{"name": "chat"}])
    screen = Screen()
    result = await _watched(engine_for(project, Silent()), RunRequest.new("chat", "hi"), screen)
    assert screen.events == ["text:all at once"] and result.output == "all at once"


async def test_an_unwatched_run_does_not_stream_and_runs_do_not_share_a_screen(make_project, engine_for) -> None:
    project = make_project([{"name": "chat"}])
    llm = FunctionLLM(lambda request: Reply(text=f"answer to {request.messages[-1]['content']}"))
    engine = engine_for(project, llm)
    a, b = Screen(), Screen()
    await asyncio.gather(
        _watched(engine, RunRequest.new("chat", "a"), a),
        _watched(engine, RunRequest.new("chat", "b"), b),
        engine.run(RunRequest.new("chat", "c")),
    )
    assert (a.shown, b.shown) == ("answer to a", "answer to b")
    assert [r.on_text is None for r in llm.requests].count(True) == 1


async def test_the_conversation_so_far_reaches_the_model_in_order(make_project, engine_for) -> None:
    project = make_project([{"name": "chat"}])
    llm = ScriptedLLM(["Paris, still"])
    history = [ChatTurn(role="user", content="capital of France?"), ChatTurn(role="assistant", content="Paris")]
    await engine_for(project, llm).run(RunRequest.new("chat", "and now?", history=history))
    sent = llm.requests[0].messages
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "capital of France?"),
        ("assistant", "Paris"),
        ("user", "and now?"),
    ]
