"""The span tree of a run, checked as data, and secrets kept out of it."""

from __future__ import annotations

from app.contracts import RunRequest, SpanEvent, SpanStatus
from app.contracts.errors import AuthError, LLMUnavailableError
from app.engine import FakeClock, LLMRequest
from app.engine.testing import FunctionLLM, Reply, ScriptedLLM, tool_call

TOOLS = {
    "t": '''
        import os

        def fetch(url: str) -> str:
            """Fetch a URL with the service token."""
            raise PermissionError("denied for token " + os.environ["FERRY_TEST_SERVICE_TOKEN"] + " at " + url)

        def add(a: int, b: int) -> int:
            """Add."""
            return a + b
    '''
}


def tree(spans: list[SpanEvent]) -> list:
    """(kind, name, status, children) nested by parent ids, children in start order."""
    by_parent: dict[str | None, list[SpanEvent]] = {}
    for span in spans:
        by_parent.setdefault(span.parent_span_id, []).append(span)

    def build(parent: str | None) -> list:
        children = sorted(by_parent.get(parent, []), key=lambda s: s.start)
        return [(s.kind.value, s.name, s.status.value, build(s.span_id)) for s in children]

    return build(None)


async def test_span_tree_of_a_run(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "a", "tools": ["t.add"], "retry_options": {"attempts": 2, "initial_delay": 1}}], tools=TOOLS
    )
    clock = FakeClock()
    llm = ScriptedLLM(
        [
            LLMUnavailableError("503"),
            Reply(tool_calls=[tool_call("add", {"a": 1, "b": 2}), tool_call("add", {"a": 2, "b": 1})]),
            "3",
        ],
        clock=clock,
        latency=0.5,
    )
    spans: list[SpanEvent] = []
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "1+2"), on_span=spans.append)
    tool_calls = [("tool_call", "tool add", "ok", []), ("tool_call", "tool add", "ok", [])]
    assert tree(spans) == [
        (
            "run",
            "run a",
            "ok",
            [
                (
                    "llm_call",
                    "llm openai/sim-model",
                    "ok",
                    [
                        ("llm_attempt", "attempt openai/sim-model", "error", []),
                        ("retry_wait", "retry_wait", "ok", []),
                        ("llm_attempt", "attempt openai/sim-model", "ok", []),
                    ],
                ),
                *tool_calls,
                (
                    "llm_call",
                    "llm openai/sim-model",
                    "ok",
                    [
                        ("llm_attempt", "attempt openai/sim-model", "ok", []),
                    ],
                ),
            ],
        )
    ]
    assert {s.trace_id for s in spans} == {spans[0].trace_id} and len(spans[0].trace_id) == 32
    assert {s.run_id for s in spans} == {result.run_id}
    assert all(len(s.span_id) == 16 for s in spans)
    run = spans[-1]
    assert run.attributes["status"] == "completed" and run.attributes["agent"] == "a"
    assert run.attributes["llm.total_tokens"] == result.usage.total_tokens
    # The result's duration is the run clock's: 0.5 s per attempt and the 1 s back-off.
    assert result.duration_ms == 2500


async def test_secrets_are_redacted_from_spans(make_project, engine_for, monkeypatch) -> None:
    secret = "tok-9f8e7d6c5b4a"
    monkeypatch.setenv("FERRY_TEST_SERVICE_TOKEN", secret)
    project = make_project([{"name": "a", "tools": ["t.fetch"]}], tools=TOOLS)
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[tool_call("fetch", {"url": "https://x/?api_key=qwerty12345"})]),
            AuthError("Incorrect API key provided: sim-key-abcdef123 (Authorization: Bearer sim-key-abcdef123)"),
        ]
    )
    engine = engine_for(project, llm, llm_api_key="sim-key-abcdef123")
    spans: list[SpanEvent] = []
    result = await engine.run(RunRequest.new("a", "go"), on_span=spans.append)
    tool = next(s for s in spans if s.kind.value == "tool_call")
    assert tool.status is SpanStatus.ERROR and "denied for token" in tool.attributes["error.message"]
    attempt = next(s for s in spans if s.kind.value == "llm_attempt" and s.status is SpanStatus.ERROR)
    assert attempt.attributes["error.category"] == "auth"
    dumped = "".join(s.model_dump_json() for s in spans)
    for leaked in (secret, "qwerty12345", "abcdef123"):
        assert leaked not in dumped
    assert "[REDACTED]" in dumped
    assert result.error is not None and result.error.category.value == "auth"


async def test_spans_of_a_run_go_only_to_its_sink(make_project, engine_for) -> None:
    project = make_project([{"name": "a"}])
    engine = engine_for(project, FunctionLLM(lambda request: "ok"))
    first: list[SpanEvent] = []
    second: list[SpanEvent] = []
    r1 = await engine.run(RunRequest.new("a", "1"), on_span=first.append)
    r2 = await engine.run(RunRequest.new("a", "2"), on_span=second.append)
    assert {s.run_id for s in first} == {r1.run_id} and {s.run_id for s in second} == {r2.run_id}
    assert {s.trace_id for s in first}.isdisjoint({s.trace_id for s in second})
    assert first and second


async def test_llm_spans_carry_the_model_tokens_and_estimate(make_project, engine_for) -> None:
    project = make_project([{"name": "a"}])

    def answer(request: LLMRequest) -> Reply:
        return Reply(text="ok", model="openai/actually-answered")

    spans: list[SpanEvent] = []
    await engine_for(project, FunctionLLM(answer)).run(RunRequest.new("a", "hello"), on_span=spans.append)
    call = next(s for s in spans if s.kind.value == "llm_call")
    assert call.attributes["model"] == "openai/actually-answered"  # the model that answered, not the one asked
    assert (call.attributes["llm.prompt_tokens"], call.attributes["llm.completion_tokens"]) == (20, 10)
    assert call.attributes["llm.estimated_prompt_tokens"] > 0
