"""Step checkpoints: a worker SIGKILLed mid-way through multi-step runs (LLM → tool → LLM);
its replacement resumes them from their last completed step.

What a user would notice, checked three ways: every run has exactly one result; no
completed step was done twice (each step's checkpoint is written once: a second write of
a key means a second worker did again what the first had finished); the simulator saw a
step asked again only for the step in progress of a run in flight at the kill.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply, ToolCall, ToolCallsReply
from app.streams import ResultWatcher, Submitter, TopicNames
from app.streams.checkpoints import checkpoints_topic
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams.conftest import child_env, llm_agent, write_project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
RUNS = 60
CAP = 12
STEP_MS = 400

LEDGER_TOOL = '''
import json
import os


def price(code: str, context: dict) -> dict:
    """Look up a price (and note the call in the ledger file: the test counts side effects)."""
    with open(os.environ["LEDGER_FILE"], "a") as ledger:
        ledger.write(json.dumps({"key": context.get("idempotency_key"), "code": code}) + "\\n")
    return {"code": code, "price": 42}
'''


async def _start_worker(project_dir: Path, bootstrap: str, app_id: str, prefix: str, base_url: str, ledger: Path):
    env = child_env() | {"FERRY_LLM_BASE_URL": base_url, "LEDGER_FILE": str(ledger)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "worker", "--project", str(project_dir), "--broker", bootstrap,
        "--app-id", app_id, "--topic-prefix", prefix, "--no-traces", "--no-metrics", "--no-history",
        "--no-webhooks", cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(90):
        while b"consuming" not in (line := await process.stderr.readline()):
            assert line, "the worker exited before it started consuming"
            lines.append(line.decode())

    async def keep_reading() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            lines.append(line.decode())

    asyncio.get_running_loop().create_task(keep_reading())
    process.lines = lines  # type: ignore[attr-defined]
    return process


async def _checkpoint_writes(bootstrap: str, topic: str) -> Counter[str]:
    """How often each step key was written (tombstones apart), reading the whole log."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    writes: Counter[str] = Counter()
    try:
        parts = consumer.assignment() or set()
        async with asyncio.timeout(30):
            while not parts:
                await asyncio.sleep(0.1)
                parts = consumer.assignment()
        ends = await consumer.end_offsets(list(parts))
        async with asyncio.timeout(60):
            while any([await consumer.position(tp) < end for tp, end in ends.items()]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.value is not None and record.key is not None:
                            writes[record.key.decode()] += 1
    finally:
        await consumer.stop()
    return writes


def _step_of(body: dict) -> tuple[str, int]:
    """(the run's job number, which LLM step of the run) of one simulator request."""
    messages = body["messages"]
    user = next(m["content"] for m in messages if m["role"] == "user")
    job = re.search(r"job \d+", json.dumps(user))
    assert job is not None
    return job.group(0), sum(1 for m in messages if m["role"] == "assistant") + 1


async def test_a_killed_worker_s_runs_resume_without_repeating_completed_steps(
    tmp_path: Path, kafka_bootstrap: str, prefix: str, names: TopicNames
) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "ledger.py").write_text(LEDGER_TOOL)
    project = write_project(
        tmp_path, {"pricer": llm_agent(tools=["ledger.price"], max_iterations=3, max_concurrent_runs=CAP)}
    )
    ledger = tmp_path / "ledger.jsonl"
    app_id = unique("ferry-ckpt")
    # Two paces (odd and even jobs), so that at any moment some runs are at the model and
    # others between their steps.
    rules = [
        Rule(
            match=Match(assistant_turns=0, last_user_regex=pace),
            reply=ToolCallsReply(calls=[ToolCall(name="price", arguments={"code": "A1"})]),
            delay_ms=delay,
        )
        for pace, delay in ((r"[02468]$", STEP_MS // 2), (r"[13579]$", STEP_MS))
    ]
    rules.append(Rule(match=Match(has_tool_result="price"), reply=TextReply(text="42"), delay_ms=STEP_MS))
    async with LLMSimulator(rules, latency_ms=0, record_requests=True) as sim:
        first = await _start_worker(tmp_path, kafka_bootstrap, app_id, prefix, sim.base_url, ledger)
        second = None
        try:
            requests = [RunRequest.new("pricer", {"message": f"price job {i}"}) for i in range(RUNS)]
            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                for request in requests:
                    await submitter.send(request)
                await submitter.flush()
                async with asyncio.timeout(90):  # mid-way: some runs done, others between their steps
                    while len(watcher.results) < RUNS // 4:
                        await watcher.poll()
                await wait_for(lambda: sim.in_flight >= CAP // 3, 30, interval=0.005, what="runs at the model")

                async def between_steps() -> bool:
                    """A run whose tool has run (its first steps checkpointed) has no result yet."""
                    await watcher.poll(timeout_ms=5)
                    tools_run = len(ledger.read_text().splitlines()) if ledger.exists() else 0
                    return tools_run > len(watcher.results)

                await wait_for(between_steps, 30, interval=0.005, what="a run between its steps")
                in_flight_at_kill = sim.in_flight  # requests the dead worker was still waiting for
                first.send_signal(signal.SIGKILL)
                await first.wait()
                done_before = len(watcher.results)
                second = await _start_worker(tmp_path, kafka_bootstrap, app_id, prefix, sim.base_url, ledger)
                results = await watcher.wait_for([r.run_id for r in requests], timeout=180)
                await watcher.read_to_end()
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 60)
            asked_at_all = Counter(_step_of(r.body) for r in sim.requests)
        finally:
            for process in (first, second):
                if process is not None and process.returncode is None:
                    process.kill()
                    await process.wait()
    writes = await _checkpoint_writes(kafka_bootstrap, checkpoints_topic(names))

    assert done_before < RUNS
    assert len(results) == RUNS and {r.status for r in results.values()} == {RunStatus.COMPLETED}
    assert watcher.duplicates == 0  # every run completed once
    # The replacement did resume runs (the test exercises what it claims).
    resumed = [line for line in second.lines if "steps replayed from checkpoints" in line]  # type: ignore[attr-defined]
    assert resumed, "no run was resumed from a checkpoint"
    # No completed step done twice: each LLM response and tool result recorded once.
    assert all(count == 1 for count in writes.values()), [k for k, c in writes.items() if c > 1]
    # Every response calling the tool recorded; a final answer only when its result was late
    # (an acknowledged result stands for its answer).
    assert sum(1 for key in writes if key.endswith("\x00llm.1")) == RUNS
    assert sum(1 for key in writes if "\x00tool." in key) == RUNS
    # The simulator: a step asked twice only if it was the step in progress of a run in flight
    # at the kill: its request still at the model, or answered but not yet recorded by a
    # worker short of CPU (so not counted in `in_flight_at_kill`, a moment before the kill).
    # At most one step per run in flight, so at most CAP; without resuming, every unfinished
    # run would ask its first step again (dozens).
    repeated = sum(count - 1 for count in asked_at_all.values() if count > 1)
    assert in_flight_at_kill >= 1  # the kill hit runs at the model
    assert repeated <= CAP, (repeated, in_flight_at_kill)
    assert len(asked_at_all) == 2 * RUNS
    # Tools: run once per call, except one cut off by the kill before its result was recorded.
    keys = Counter(json.loads(line)["key"] for line in ledger.read_text().splitlines())
    assert None not in keys and len(keys) >= RUNS
    assert sum(count - 1 for count in keys.values()) <= 2
