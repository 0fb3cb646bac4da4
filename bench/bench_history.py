"""What the run history and metrics cost a worker, and how far the history lags behind.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_history.py [--runs 500] [--rounds 2]

One in-process `Worker` (engine, scheduler, traces on, as `ferry worker` runs it) against
the LLM simulator at 0 ms in its own process, one-call runs of a one-agent project, in
two configurations measured in the same invocation, alternating (on, off, off, on, …):
  - on:  the history projector (SQLite in a temp dir, its own consumer group) and
         Prometheus metrics (`/metrics` on a free local port) beside the agents;
  - off: `Worker(history=None, metrics=None)`: no projector, no metrics kept;
  - history / metrics (with `--configs on,off,history,metrics`): one of the two alone,
    to see which costs what;
  - replay: as off, then a projector alone stores the round's runs from the topics (in
    batches of ~100 runs, as the live one's linger gathers them at this load) and its CPU
    per run is reported beside the worker's: the projector's own cost, measured directly.
Each round uses fresh topics (a unique prefix), sends 20 warm-up runs, then `--runs`
requests at once; runs/s is from the first send to the last result read, CPU/run is
this process's CPU time (all threads; the simulator is another process) over the burst
and the history's catch-up, divided by `--runs`. An unmeasured round with everything on
comes first (one-off import and cache costs).

History lag (on only): every `--sample-ms` the projector's count of stored results is
sampled; the k-th result read by the driver is in the store at the first sample whose
count reaches k. Lag = that time - the time the driver read the result (the result's
produce time, to a few ms). Reported as p50 / p99 / max over the burst, and the time
from the last result read to the last row stored.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
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

from app.contracts import RunRequest  # noqa: E402
from app.devstack.llm_sim import start_simulator_process  # noqa: E402
from app.observability.history import HistorySettings  # noqa: E402
from app.observability.history.projector import HistoryProjector  # noqa: E402
from app.observability.history.store import HistoryStore  # noqa: E402
from app.observability.metrics import MetricsEndpoint  # noqa: E402
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402

AGENT = "bench"
WARM_UP = 20


def write_project(root: Path, cap: int) -> Any:
    from app.project import load_project

    (root / "agents").mkdir(parents=True, exist_ok=True)
    agent = {
        "version": "1.0",
        "name": AGENT,
        "description": "benchmark agent",
        "model": "openai/sim-model",
        "system_prompt": "Answer briefly.",
        "max_iterations": 2,
        "max_concurrent_runs": cap,
        "retry_options": {"attempts": 1, "initial_delay": 0},
    }
    (root / "agents" / f"{AGENT}.yaml").write_text(yaml.safe_dump(agent))
    return load_project(root)


async def measure(config: str, round_no: int, args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"benchhist-{uuid.uuid4().hex[:6]}-{config}."
    names = TopicNames(prefix)
    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-history-"))
    project = write_project(tmp, args.cap)
    await apply_topics(args.broker, plan_topics(project, names))
    settings = StreamSettings(bootstrap=args.broker, app_id=f"{prefix}worker", topic_prefix=prefix)
    projector: HistoryProjector | None = None
    if config in ("on", "history"):
        projector = HistoryProjector(
            args.broker,
            names,
            HistorySettings(database_url=f"sqlite:///{tmp / 'history.db'}", group_id=f"{prefix}history"),
        )
    metrics = MetricsEndpoint(host="127.0.0.1", port=0) if config in ("on", "metrics") else None
    loop = asyncio.get_running_loop()
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        assert projector is not None
        while True:
            samples.append((loop.time(), projector.stats.runs))
            await asyncio.sleep(args.sample_ms / 1000)

    async with Worker(project, settings, history=projector, metrics=metrics) as worker:
        await worker.wait_assigned()
        async with ResultWatcher(args.broker, names) as watcher, Submitter(args.broker, project, names) as sub:

            async def batch(count: int) -> tuple[float, float, list[str]]:
                requests = [RunRequest.new(AGENT, {"message": f"run {i}"}) for i in range(count)]
                reader = asyncio.create_task(watcher.wait_for([r.run_id for r in requests], timeout=args.timeout))
                t0 = loop.time()
                for request in requests:
                    await sub.send(request)
                await sub.flush()
                got = await reader
                if len(got) < count:
                    raise RuntimeError(f"{config}: only {len(got)}/{count} results")
                return t0, max(watcher.arrivals[r.run_id] for r in requests), [r.run_id for r in requests]

            await batch(WARM_UP)
            baseline = 0
            if projector is not None:  # the warm-up's rows stored first, so the burst starts clean
                while projector.stats.runs < WARM_UP:  # noqa: ASYNC110 (a counter, sampled: no event to wait on)
                    await asyncio.sleep(0.01)
                baseline = projector.stats.runs
            batches0 = projector.stats.batches if projector is not None else 0
            sampler = asyncio.create_task(sample()) if projector is not None else None
            cpu0 = time.process_time()
            t0, last_read, run_ids = await batch(args.runs)
            row: dict[str, Any] = {
                "config": config,
                "round": round_no,
                "runs": args.runs,
                "runs_per_s": round(args.runs / (last_read - t0), 1),
            }
            if projector is not None and sampler is not None:
                deadline = loop.time() + args.timeout
                while projector.stats.runs < baseline + args.runs and loop.time() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(args.sample_ms / 1000)
                samples.append((loop.time(), projector.stats.runs))
                sampler.cancel()
            # CPU of this process (every thread) per run, the history's catch-up included:
            # steadier than runs/s on a shared machine, and what a CPU-bound worker's rate follows.
            row["cpu_ms_per_run"] = round((time.process_time() - cpu0) * 1000 / args.runs, 3)
            if config == "replay":
                row["projector_cpu_ms_per_run"] = await replay_cpu(args, names, tmp, prefix, WARM_UP + args.runs)
            if projector is not None:
                row.update(history_lag(samples, baseline, sorted(watcher.arrivals[r] for r in run_ids), last_read))
                # Runs per stored batch: the store's per-batch costs (a transaction, an offset commit) spread over them.
                row["runs_per_batch"] = round(args.runs / max(1, projector.stats.batches - batches0), 1)
    return row


async def replay_cpu(args: argparse.Namespace, names: TopicNames, tmp: Path, prefix: str, runs: int) -> float:
    """CPU ms per run of a projector alone storing the round's runs from the topics, in
    batches of 500 records (~100 runs, the size the live projector's linger gathers at
    this load): the projector's own cost, without the noise of two whole-worker rounds."""
    store = HistoryStore.open(f"sqlite:///{tmp / 'replay.db'}")  # migrations not counted
    projector = HistoryProjector(
        args.broker, names, HistorySettings(group_id=f"{prefix}replay", batch_size=500, linger_ms=0), store=store
    )
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    await projector.start()
    deadline = loop.time() + args.timeout
    while projector.stats.runs < runs and loop.time() < deadline:  # noqa: ASYNC110 (a counter, sampled)
        await asyncio.sleep(0.01)
    cpu = time.process_time() - cpu0
    await projector.stop()
    store.close()
    if projector.stats.runs < runs:
        raise RuntimeError(f"replay: only {projector.stats.runs}/{runs} runs stored")
    return round(cpu * 1000 / runs, 3)


def history_lag(
    samples: list[tuple[float, int]], baseline: int, arrivals: list[float], last_read: float
) -> dict[str, Any]:
    counts = [count - baseline for _, count in samples]
    lags: list[float] = []
    for k, arrived in enumerate(arrivals, start=1):
        at = bisect.bisect_left(counts, k)
        if at < len(samples):
            lags.append(max(0.0, samples[at][0] - arrived))
    lags.sort()
    stored_all = next((t for (t, _), c in zip(samples, counts, strict=True) if c >= len(arrivals)), None)
    return {
        "stored": f"{len(lags)}/{len(arrivals)}",
        "lag_p50_s": round(statistics.median(lags), 3) if lags else None,
        "lag_p99_s": round(lags[max(0, int(len(lags) * 0.99) - 1)], 3) if lags else None,
        "lag_max_s": round(lags[-1], 3) if lags else None,
        "last_row_after_last_result_s": round(stored_all - last_read, 3) if stored_all is not None else None,
    }


async def main(args: argparse.Namespace) -> None:
    sim = start_simulator_process([], latency_ms=0, extra_args=["--no-record"])
    os.environ["FERRY_LLM_BASE_URL"] = sim.base_url
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    print(f"load before: {os.getloadavg()}", flush=True)
    rows: list[dict[str, Any]] = []
    try:
        configs = [c.strip() for c in args.configs.split(",") if c.strip()]
        # One unmeasured round with everything on: the process's first worker, projector and
        # metrics pay one-off costs (imports, SQL compilation caches) that no config should carry.
        await measure("on", 0, argparse.Namespace(**{**vars(args), "runs": 100}))
        for round_no in range(args.rounds):
            order = configs if round_no % 2 == 0 else configs[::-1]
            for config in order:
                row = await measure(config, round_no + 1, args)
                row["load_1m"] = round(os.getloadavg()[0], 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        sim.stop()

    def median(config: str, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["config"] == config)

    print(f"\nruns={args.runs} rounds={args.rounds} cap={args.cap}; load after: {os.getloadavg()}")
    for config in configs:
        rate, cpu = median(config, "runs_per_s"), median(config, "cpu_ms_per_run")
        line = f"  {config}: median {rate:.1f} runs/s, {cpu:.3f} ms CPU/run"
        if "off" in configs and config != "off":
            line += (
                f"; vs off: runs/s {100 * (1 - rate / median('off', 'runs_per_s')):+.1f} % lower, "
                f"CPU/run {100 * (cpu / median('off', 'cpu_ms_per_run') - 1):+.1f} % higher"
            )
        print(line)
    replayed = [r["projector_cpu_ms_per_run"] / r["cpu_ms_per_run"] for r in rows if "projector_cpu_ms_per_run" in r]
    if replayed:
        print(
            f"  replay: the projector alone costs a median {100 * statistics.median(replayed):.1f} % of the "
            f"worker's CPU/run of the same round (range {100 * min(replayed):.1f}–{100 * max(replayed):.1f} %)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER"))
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="each round measures every config (order alternates)")
    parser.add_argument("--configs", default="on,off", help="of on, off, history, metrics")
    parser.add_argument("--cap", type=int, default=64, help="the agent's max_concurrent_runs")
    parser.add_argument("--sample-ms", type=int, default=20, help="how often the store's count is sampled")
    parser.add_argument("--timeout", type=float, default=300.0)
    parsed = parser.parse_args()
    if not parsed.broker:
        parser.error("set FERRY_BROKER or pass --broker")
    start = time.monotonic()
    asyncio.run(main(parsed))
    print(f"took {time.monotonic() - start:.0f} s")
