"""The invoice pipeline over Kafka with traces on and a projector beside the worker:
`ferry runs` lists the pipeline and its stages with usage that adds up, and `ferry trace`
of the root shows every stage's LLM and tool steps in one tree."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from app.cli import main
from app.cli.demo import invoice_samples
from app.contracts import RunRequest
from app.devstack.llm_sim import LLMSimulator
from app.devstack.scenarios.invoice import invoice_rules
from app.engine import EngineSettings
from app.observability.history import HistorySettings, HistoryStore, RunFilter
from app.observability.history.projector import HistoryProjector
from app.project import load_project
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from app.streams.pipeline import stage_run_id
from tests.integration.kafka_helpers import unique

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
STAGES = ["invoice-extractor", "invoice-validator", "invoice-storer"]


async def test_a_pipeline_run_is_listed_costed_and_traced_from_the_history(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = load_project(ROOT)
    sample = invoice_samples(ROOT / "samples" / "invoices")[0]
    names = TopicNames(unique("t") + ".")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    app_id = unique("ferry-hist")
    request = RunRequest.new("invoice-pipeline", sample.payload, tenant="acct")
    async with LLMSimulator(invoice_rules(project, sample.payload), latency_ms=0) as sim:
        settings = StreamSettings(
            bootstrap=kafka_bootstrap, app_id=app_id, topic_prefix=names.prefix, agents=("invoice-pipeline",)
        )
        worker = Worker(project, settings, engine_settings=EngineSettings(llm_base_url=sim.base_url))
        projector = HistoryProjector(
            kafka_bootstrap, names, HistorySettings(database_url=url, group_id=f"{app_id}.history")
        )
        try:
            await worker.start()  # creates the topics, runs.results and runs.traces among them
            await projector.start()
            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                await submitter.submit(request)
                await watcher.wait_for([request.run_id], timeout=120)
            assert projector.store is not None
            await _wait_for_history(projector.store, request.run_id)
        finally:
            await projector.stop()
            await worker.stop()

    assert main(["runs", "--database-url", url, "--json"]) == 0
    runs = {run["run_id"]: run for run in __import__("json").loads(capsys.readouterr().out)}
    stage_ids = [stage_run_id(request.run_id, i) for i in range(3)]
    assert set(runs) == {request.run_id, *stage_ids}
    root = runs[request.run_id]
    assert root["kind"] == "pipeline" and root["status"] == "completed" and root["tenant"] == "acct"
    stages = [runs[run_id] for run_id in stage_ids]
    assert [s["agent"] for s in stages] == STAGES
    assert root["total_tokens"] == sum(s["total_tokens"] for s in stages) > 0
    assert root["prompt_tokens"] == sum(s["prompt_tokens"] for s in stages)

    assert main(["runs", "--database-url", url]) == 0
    table = capsys.readouterr().out
    assert all(run_id in table for run_id in runs)

    assert main(["trace", request.run_id, "--database-url", url]) == 0
    tree = capsys.readouterr().out
    stage_lines = [line for line in tree.splitlines() if re.match(r"^[├└]─ stage \d", line)]
    assert [line.split()[3] for line in stage_lines] == STAGES
    llm_calls = re.findall(r"^│  [├└]─ llm \S+  ✓ .* \$\d", tree, re.MULTILINE)
    assert len(llm_calls) == root["llm_calls"] >= 2  # every stage's LLM calls, each costed
    assert re.search(r"^│  │  └─ attempt 1 \S+  ✓", tree, re.MULTILINE)
    assert re.search(r"^│  [├└]─ tool parse_pdf\b.*  ✓ .*→ [\d,]+ chars", tree, re.MULTILINE)  # the extractor's tool
    assert re.search(r"^   └─ tool to_invoice_record\b.*  ✓", tree, re.MULTILINE)  # the storer, a tool agent


async def _wait_for_history(store: HistoryStore, root_run_id: str, timeout: float = 60) -> None:
    """Until the root, its three stages and each stage's run span are stored."""
    deadline = time.monotonic() + timeout
    while True:
        runs = await asyncio.to_thread(store.runs, RunFilter(limit=100))
        ids = {run.run_id for run in runs}
        spans = await asyncio.to_thread(store.spans, [stage_run_id(root_run_id, i) for i in range(3)])
        stage_runs = {span.run_id for span in spans if span.kind == "run"}
        if root_run_id in ids and len(ids) == 4 and len(stage_runs) == 3:
            return
        assert time.monotonic() < deadline, f"history holds runs {sorted(ids)}, run spans of {sorted(stage_runs)}"
        await asyncio.sleep(0.2)
