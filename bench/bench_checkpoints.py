"""What step checkpoints cost: per step (one acknowledged write) and per run (on vs off).

    FERRY_BROKER=host:port .venv/bin/python bench/bench_checkpoints.py [--writes 500] [--runs 300]

1. Per step: `CheckpointStore.write` (acks=all, what a run awaits before acting on a step),
   one at a time (latency p50/p99) and 64 at once (writes/s, CPU of this process per write).
2. Per run: an in-process worker running `--runs` runs of LLM → tool → LLM (3 steps
   recorded each) against the LLM simulator (its own process, 0 ms), with checkpoints
   on and off (ferry.yaml `durability.checkpoints`):
   - sequential: one run at a time, p50/p99 from submit to result (the latency a run pays);
   - burst: all at once, cap 32: runs/s and this process's CPU per run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contracts import RunRequest, RunStatus  # noqa: E402
from app.devstack.llm_sim import Match, Rule, TextReply, ToolCall, ToolCallsReply, start_simulator_process  # noqa: E402
from app.engine import EngineSettings  # noqa: E402
from app.project import load_project  # noqa: E402
from app.project.project import Project  # noqa: E402
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker  # noqa: E402
from app.streams.checkpoints import CheckpointStore  # noqa: E402
from app.streams.outbox import Outbox  # noqa: E402

AGENT = "stepper"
TOOL = '''
def price(code: str) -> dict:
    """A price."""
    return {"code": code, "price": 42}
'''


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_writes(bootstrap: str, writes: int) -> dict[str, float]:
    names = TopicNames(f"bench-ckpt-{uuid.uuid4().hex[:8]}.")
    outbox = Outbox(bootstrap, names)
    await outbox.start()
    store = CheckpointStore(bootstrap, names, outbox)
    await store.start()
    value = b'{"response":{"model":"m","text":"' + b"x" * 600 + b'"},"usage":{}}'  # a typical step, ~700 B
    try:
        for i in range(20):  # warm-up: connections, metadata
            await store.write(f"warm-{i}", "llm.1", value)
        latencies = []
        for i in range(writes):
            t0 = time.perf_counter()
            await store.write(f"seq-{i}", "llm.1", value)
            latencies.append((time.perf_counter() - t0) * 1000)
        cpu0, t0 = time.process_time(), time.perf_counter()
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                await store.write(f"par-{i}", "llm.1", value)

        await asyncio.gather(*(one(i) for i in range(writes)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await store.stop()
        await outbox.stop()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": _pct(latencies, 0.99),
        "writes_per_s_64": writes / wall,
        "cpu_ms_per_write": cpu * 1000 / writes,
    }


def _project(root: Path, checkpoints: bool) -> Project:
    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "tools").mkdir(exist_ok=True)
    (root / "tools" / "shop.py").write_text(TOOL)
    agent = {
        "version": "1.0",
        "name": AGENT,
        "description": "LLM -> tool -> LLM",
        "model": "openai/sim-model",
        "system_prompt": "Answer briefly.",
        "tools": ["shop.price"],
        "max_iterations": 3,
        "max_concurrent_runs": 32,
        "retry_options": {"attempts": 1, "initial_delay": 0},
    }
    (root / "agents" / f"{AGENT}.yaml").write_text(yaml.safe_dump(agent))
    (root / "ferry.yaml").write_text(yaml.safe_dump({"durability": {"checkpoints": checkpoints}}))
    return load_project(root)


async def bench_runs(bootstrap: str, base_url: str, checkpoints: bool, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(Path(tmp), checkpoints)
        names = TopicNames(f"bench-runs-{uuid.uuid4().hex[:8]}.")
        settings = StreamSettings(
            bootstrap=bootstrap, app_id=f"bench-{uuid.uuid4().hex[:8]}", topic_prefix=names.prefix, emit_traces=False
        )
        worker = Worker(project, settings, engine_settings=EngineSettings(llm_base_url=base_url))
        async with worker:
            await worker.wait_assigned()
            async with ResultWatcher(bootstrap, names) as watcher, Submitter(bootstrap, project, names) as submitter:
                for i in range(10):  # warm-up
                    request = RunRequest.new(AGENT, {"message": f"warm {i}"})
                    await submitter.submit(request)
                    await watcher.wait_for([request.run_id], timeout=60)
                sequential = []
                for i in range(min(runs, 100)):
                    request = RunRequest.new(AGENT, {"message": f"seq {i}"})
                    t0 = time.perf_counter()
                    await submitter.submit(request)
                    await watcher.wait_for([request.run_id], timeout=60)
                    sequential.append((time.perf_counter() - t0) * 1000)
                burst = [RunRequest.new(AGENT, {"message": f"burst {i}"}) for i in range(runs)]
                cpu0, t0 = time.process_time(), time.perf_counter()
                for request in burst:
                    await submitter.send(request)
                await submitter.flush()
                results = await watcher.wait_for([r.run_id for r in burst], timeout=600)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
            writes = worker.checkpoints.writes
    return {
        "checkpoints": checkpoints,
        "seq_p50_ms": statistics.median(sequential),
        "seq_p99_ms": _pct(sequential, 0.99),
        "burst_runs_per_s": runs / wall,
        "cpu_ms_per_run": cpu * 1000 / runs,
        "checkpoint_writes": writes,
    }


async def main(args: argparse.Namespace) -> None:
    bootstrap = args.broker or os.environ.get("FERRY_BROKER", "").removeprefix("kafka://")
    if not bootstrap:
        raise SystemExit("set FERRY_BROKER or --broker")
    writes = await bench_writes(bootstrap, args.writes)
    print(
        f"per step: write p50 {writes['p50_ms']:.2f} ms, p99 {writes['p99_ms']:.2f} ms (one at a time); "
        f"{writes['writes_per_s_64']:.0f} writes/s at 64 in flight, {writes['cpu_ms_per_write']:.3f} ms CPU/write"
    )
    rules = [
        Rule(
            match=Match(assistant_turns=0),
            reply=ToolCallsReply(calls=[ToolCall(name="price", arguments={"code": "A1"})]),
        ),
        Rule(match=Match(has_tool_result="price"), reply=TextReply(text="42")),
    ]
    sim = start_simulator_process(rules=rules, latency_ms=0)
    try:
        print("| checkpoints | sequential p50 | p99 | burst runs/s | CPU ms/run | checkpoint writes |")
        print("|---|---|---|---|---|---|")
        for checkpoints in (False, True) * args.rounds:
            row = await bench_runs(bootstrap, sim.base_url, checkpoints, args.runs)
            print(
                f"| {'on' if row['checkpoints'] else 'off'} | {row['seq_p50_ms']:.1f} ms | {row['seq_p99_ms']:.1f} ms "
                f"| {row['burst_runs_per_s']:.0f} | {row['cpu_ms_per_run']:.2f} | {row['checkpoint_writes']} |",
                flush=True,
            )
    finally:
        sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=None)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs, interleaved (load drifts)")
    asyncio.run(main(parser.parse_args()))
