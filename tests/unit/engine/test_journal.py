"""The step journal: a run started again with the steps of an earlier attempt replays them.

No Kafka here: an in-memory `StepStore` stands in for app/streams/checkpoints.py.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.contracts import RunRequest, RunStatus
from app.engine.journal import IDEMPOTENCY_KEY, journal_scope, recorded_response
from app.engine.model import LLMResponse, LLMUsage, ToolCall
from app.engine.testing import Reply, ScriptedLLM, tool_call

TOOLS = {
    "ledger": """
        import json
        import os

        def charge(amount: int, context: dict) -> dict:
            '''Charge a card (each call noted in a file: the test counts side effects).'''
            with open(os.environ["LEDGER_FILE"], "a") as ledger:
                ledger.write(json.dumps({"key": context.get("idempotency_key"), "amount": amount}) + "\\n")
            return {"charged": amount}
    """
}


class MemorySteps:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.steps: dict[str, str] = {}  # JSON text, as a topic would hold it

    def recorded(self, step: str) -> Mapping[str, Any] | None:
        found = self.steps.get(step)
        return json.loads(found) if found is not None else None

    async def record(self, step: str, value: Mapping[str, Any]) -> None:
        self.steps[step] = json.dumps(value)

    def record_soon(self, step: str, value: Mapping[str, Any]) -> None:
        self.steps[step] = json.dumps(value)


def _ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_a_run_started_again_replays_its_completed_steps(make_project, engine_for, tmp_path, monkeypatch) -> None:
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("LEDGER_FILE", str(ledger))
    project = make_project([{"name": "shop", "tools": ["ledger.charge"]}], tools=TOOLS)
    request = RunRequest.new("shop", {"message": "charge 5"})
    steps = MemorySteps(request.run_id)

    # The first attempt dies at its second model call (the worker crashed there).
    first_llm = ScriptedLLM([Reply(tool_calls=[tool_call("charge", {"amount": 5}, id="c1")]), RuntimeError("crash")])
    with journal_scope(steps):
        first = await engine_for(project, first_llm).run(request)
    assert first.status == RunStatus.FAILED
    assert sorted(steps.steps) == ["llm.1", "tool.1.c1"]
    assert [entry["key"] for entry in _ledger(ledger)] == [f"{request.run_id}/tool.1.c1"]

    # The redelivered attempt: the model is asked only for what was never answered.
    second_llm = ScriptedLLM(["charged 5"])
    with journal_scope(steps) as journal:
        second = await engine_for(project, second_llm).run(request)
    assert second.status == RunStatus.COMPLETED and second.output == "charged 5"
    assert len(second_llm.requests) == 1
    conversation = second_llm.requests[0].messages
    assert conversation[-1]["role"] == "tool" and json.loads(conversation[-1]["content"]) == {"charged": 5}
    assert len(_ledger(ledger)) == 1  # the tool did not run again
    assert journal is not None and journal.replayed == 2
    # The replayed step's cost is the run's (paid once, by the first attempt).
    assert second.usage.llm_calls == 2 and second.usage.tool_calls == 1


async def test_without_a_journal_nothing_is_recorded_or_replayed(
    make_project, engine_for, tmp_path, monkeypatch
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("LEDGER_FILE", str(ledger))
    project = make_project([{"name": "shop", "tools": ["ledger.charge"]}], tools=TOOLS)
    llm = ScriptedLLM([Reply(tool_calls=[tool_call("charge", {"amount": 1}, id="c1")]), "ok"])
    result = await engine_for(project, llm).run(RunRequest.new("shop", {"message": "x"}))
    assert result.status == RunStatus.COMPLETED
    assert [entry["key"] for entry in _ledger(ledger)] == [None]  # no key without a journal


async def test_a_journal_answers_only_to_its_own_run(make_project, engine_for) -> None:
    """A run started inside another (an agent called from a tool) neither reads nor writes its steps."""
    project = make_project([{"name": "echo"}])
    outer = MemorySteps("outer-run")
    outer.steps["llm.1"] = json.dumps({"response": {"model": "m", "text": "recorded"}, "usage": {}})
    llm = ScriptedLLM(["live"])
    with journal_scope(outer):
        result = await engine_for(project, llm).run(RunRequest.new("echo", {"message": "hi"}))
    assert result.output == "live" and len(llm.requests) == 1
    assert list(outer.steps) == ["llm.1"]
    assert IDEMPOTENCY_KEY == "idempotency_key"


class WatchedSteps(MemorySteps):
    """Notes how each step was recorded, and whether the tool had run by then."""

    def __init__(self, run_id: str, ledger: Path) -> None:
        super().__init__(run_id)
        self.ledger = ledger
        self.calls: list[tuple[str, str, int]] = []  # (how, step, tool calls made so far)

    async def record(self, step: str, value: Mapping[str, Any]) -> None:
        self.calls.append(("awaited", step, len(_ledger(self.ledger))))
        await super().record(step, value)

    def record_soon(self, step: str, value: Mapping[str, Any]) -> None:
        self.calls.append(("soon", step, len(_ledger(self.ledger))))
        super().record_soon(step, value)


async def test_only_a_final_answer_is_recorded_without_the_run_waiting(
    make_project, engine_for, tmp_path, monkeypatch
) -> None:
    """An answer that calls a tool is durable before the tool runs; the last answer, which
    nothing acts on before the result, is written without the run awaiting it."""
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("LEDGER_FILE", str(ledger))
    project = make_project([{"name": "shop", "tools": ["ledger.charge"]}], tools=TOOLS)
    request = RunRequest.new("shop", {"message": "charge 5"})
    steps = WatchedSteps(request.run_id, ledger)
    llm = ScriptedLLM([Reply(tool_calls=[tool_call("charge", {"amount": 5}, id="c1")]), "charged 5"])
    with journal_scope(steps):
        result = await engine_for(project, llm).run(request)
    assert result.status == RunStatus.COMPLETED
    assert steps.calls == [("awaited", "llm.1", 0), ("awaited", "tool.1.c1", 1), ("soon", "llm.2", 1)]


def test_a_response_is_recorded_as_every_field_of_it() -> None:
    """The record is asdict's shape: a field added to LLMResponse and not recorded fails here."""
    response = LLMResponse(
        model="openai/m",
        text="t",
        tool_calls=(ToolCall(id="c1", name="charge", arguments='{"amount": 5}'),),
        finish_reason="tool_calls",
        usage=LLMUsage(prompt_tokens=3, completion_tokens=4, cost_usd=0.5),
    )
    recorded = recorded_response(response)
    assert json.loads(json.dumps(recorded)) == json.loads(json.dumps(dataclasses.asdict(response)))
