"""`ferry trace` explains give-ups, fallbacks, tool arguments and rejected answers: runs
made by the real engine on the in-process fake model, their results and spans stored
in a history store as the projector stores them, then drawn by the real command."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from app.cli import main
from app.contracts import RunRequest, RunResult, SpanEvent
from app.contracts.errors import AuthError, RateLimitError
from app.engine import Engine, EngineSettings, FakeClock
from app.engine.testing import FunctionLLM, Reply, ScriptedLLM, tool_call
from app.observability.history import HistoryStore
from app.project import load_project

AGENTS = [
    {"name": "limited", "timeout": 30, "retry_options": {"attempts": 3, "initial_delay": 2}},
    {"name": "fallback", "model": "openai/primary", "fallback_model": "openai/backup"},
    {"name": "extractor", "output_schema": "invoice", "retry_options": {"attempts": 1}, "tools": ["t.pay"]},
]
TOOLS = '''
def pay(card_number: str, amount: float, api_key: str = "") -> str:
    """Pay."""
    return "paid"

pay.secret_arguments = ["card_number"]
'''
INVOICE = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}


async def run_all(root: Path) -> tuple[list[RunResult], list[SpanEvent]]:
    (root / "agents").mkdir(parents=True)
    (root / "tools").mkdir()
    (root / "schemas").mkdir()
    for agent in AGENTS:
        full = {"version": "1.0", "description": "d", "model": "openai/sim-model", "system_prompt": "s", **agent}
        (root / "agents" / f"{agent['name']}.yaml").write_text(yaml.safe_dump(full))
    (root / "tools" / "t.py").write_text(textwrap.dedent(TOOLS))
    (root / "schemas" / "invoice.json").write_text(json.dumps(INVOICE))
    project = load_project(root)
    clock = FakeClock()
    answers = {
        "limited": [RateLimitError("come back later", retry_after_seconds=120)],
        "fallback": [AuthError("key revoked")],
        "extractor": [
            Reply(tool_calls=[tool_call("pay", {"card_number": "4111111111111111", "amount": 9.5, "api_key": "k1"})]),
            'The total is {"total": "nine fifty"} I believe',
        ],
    }
    scripts = {name: ScriptedLLM(steps, clock=clock) for name, steps in answers.items()}
    results: list[RunResult] = []
    spans: list[SpanEvent] = []
    for current in answers:
        llm = FunctionLLM(lambda request, name=current: scripts[name].complete(request), clock=clock)
        engine = Engine(project, settings=EngineSettings(retry_jitter=0.0), llm=llm, clock=clock)
        try:
            results.append(
                await engine.run(RunRequest.new(current, "go", run_id=f"run-{current}"), on_span=spans.append)
            )
        finally:
            await engine.aclose()
    return results, spans


@pytest.fixture
async def url(tmp_path: Path) -> str:
    results, spans = await run_all(tmp_path / "project")
    location = f"sqlite:///{tmp_path / 'history.db'}"
    store = HistoryStore.open(location)
    store.write(results, spans)
    store.close()
    return location


def trace(capsys: pytest.CaptureFixture[str], url: str, run_id: str, *extra: str) -> str:
    code = main(["trace", run_id, "--database-url", url, *extra])
    out = capsys.readouterr().out
    assert code == 0
    return out


def test_a_retry_after_past_the_deadline_is_explained(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = trace(capsys, url, "run-limited")
    (llm,) = [line for line in out.splitlines() if "llm openai/sim-model" in line]
    assert "1 of 3 attempts" in llm
    assert "no fallback model" in llm
    assert "gave up: Retry-After 120.00 s would pass the deadline (30.00 s left)" in llm


def test_a_fallback_tried_shows_with_its_give_up(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = trace(capsys, url, "run-fallback")
    (llm,) = [line for line in out.splitlines() if "─ llm " in line]
    assert "fallback → openai/backup after auth" in llm
    # The backup's script is empty: the fake fails it as internal, which is never retried.
    assert "2 of 4 attempts" in llm and "gave up: internal is not retried" in llm


def test_tool_arguments_and_the_rejected_answer(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = trace(capsys, url, "run-extractor")
    assert '─ tool pay(card_number="[REDACTED]", amount=9.5, api_key="[REDACTED]")  ✓' in out
    assert "4111111111111111" not in out
    lines = out.splitlines()
    (check,) = [i for i, line in enumerate(lines) if "output validation" in line]
    assert "✗ output_validation" in lines[check]
    assert lines[check + 1].endswith('answer: The total is {"total": "nine fifty"} I believe')
    data = json.loads(trace(capsys, url, "run-extractor", "--json"))
    assert "4111111111111111" not in json.dumps(data)
