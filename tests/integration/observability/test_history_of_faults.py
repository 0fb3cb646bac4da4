"""Faults injected by the LLM simulator, seen through the history: a 429 with Retry-After
then success shows its attempts and the wait; runs failed by each fault carry the
matching category in `ferry runs --category` and a ✗ on the failed step."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from app.cli import main
from app.contracts import RunRequest
from app.contracts.errors import ErrorCategory
from app.devstack.llm_sim import LLMSimulator
from app.devstack.llm_sim.rules import FaultKind, FaultReply, Match, Rule, SequenceReply, TextReply
from app.engine import EngineSettings
from app.observability.history import HistorySettings, HistoryStore, RunFilter
from app.observability.history.projector import HistoryProjector
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from tests.integration.kafka_helpers import unique
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = pytest.mark.integration

FAULTS = {
    "bad_request": (FaultKind.BAD_REQUEST, ErrorCategory.LLM_BAD_REQUEST),
    "auth": (FaultKind.AUTH, ErrorCategory.AUTH),
    "context_length": (FaultKind.CONTEXT_LENGTH, ErrorCategory.CONTEXT_LENGTH),
    "unavailable": (FaultKind.UNAVAILABLE, ErrorCategory.LLM_UNAVAILABLE),
}


async def test_retries_waits_and_failure_categories_are_in_the_history(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    retry = {"attempts": 2, "initial_delay": 0, "max_delay": 1}
    project = write_project(tmp_path / "project", {"helper": llm_agent(retry_options=retry)})
    rules = [
        Rule(
            match=Match(last_user_contains="flaky"),
            reply=SequenceReply(steps=[FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=0.3), TextReply(text="ok")]),
        ),
        *(Rule(match=Match(last_user_contains=f"fail-{name}"), reply=FaultReply(fault=fault))
          for name, (fault, _) in FAULTS.items()),
    ]  # fmt: skip
    names = TopicNames(unique("t") + ".")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    app_id = unique("ferry-faults")
    flaky = RunRequest.new("helper", "flaky question")
    failing = {name: RunRequest.new("helper", f"fail-{name} please") for name in FAULTS}
    requests = [flaky, *failing.values()]
    async with LLMSimulator(rules, latency_ms=0) as sim:
        settings = StreamSettings(bootstrap=kafka_bootstrap, app_id=app_id, topic_prefix=names.prefix)
        worker = Worker(project, settings, engine_settings=EngineSettings(llm_base_url=sim.base_url))
        projector = HistoryProjector(
            kafka_bootstrap, names, HistorySettings(database_url=url, group_id=f"{app_id}.history")
        )
        try:
            await worker.start()
            await projector.start()
            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                for request in requests:
                    await submitter.submit(request)
                await watcher.wait_for([r.run_id for r in requests], timeout=120)
            assert projector.store is not None
            await _wait_for_runs_and_spans(projector.store, [r.run_id for r in requests])
        finally:
            await projector.stop()
            await worker.stop()

    assert main(["trace", flaky.run_id, "--database-url", url]) == 0
    tree = capsys.readouterr().out
    assert "✓ completed" in tree.splitlines()[0]
    assert "└─ llm openai/sim-model  ✓" in tree and "2 attempts" in tree
    assert "├─ attempt 1 openai/sim-model  ✗ rate_limit" in tree
    assert "wait 0.30 s after attempt 1: rate_limit, Retry-After 0.30 s" in tree
    assert tree.index("✗ rate_limit") < tree.index("wait 0.30 s") < tree.index("└─ attempt 2 openai/sim-model  ✓")

    for name, (_, category) in FAULTS.items():
        assert main(["runs", "--database-url", url, "--category", category.value, "--json"]) == 0
        listed = [run["run_id"] for run in json.loads(capsys.readouterr().out)]
        assert listed == [failing[name].run_id], name
        assert main(["trace", failing[name].run_id, "--database-url", url]) == 0
        tree = capsys.readouterr().out
        assert f"✗ {category.value}" in tree.splitlines()[2]  # the run's own error line
        assert f"✗ {category.value}" in "\n".join(tree.splitlines()[3:])  # and the failed step


async def _wait_for_runs_and_spans(store: HistoryStore, run_ids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stored = {run.run_id for run in await asyncio.to_thread(store.runs, RunFilter(limit=1000))}
        with_run_span = {s.run_id for s in await asyncio.to_thread(store.spans, run_ids) if s.kind == "run"}
        if set(run_ids) <= stored and set(run_ids) <= with_run_span:
            return
        assert time.monotonic() < deadline, f"stored {sorted(stored)}; run spans of {sorted(with_run_span)}"
        await asyncio.sleep(0.2)
