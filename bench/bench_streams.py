"""Ferry's stream processing against a raw aiokafka loop doing the same work, on one broker.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_streams.py [--runs 1000] [--paced 200]

Both sides run in their own process, against the LLM simulator in a third:
  - ferry: `ferry worker` (faust app, scheduler, engine, commit-after-result, traces on);
  - raw:   aiokafka consumer → `litellm.acompletion` to the simulator → produce a RunResult,
           `--cap` calls in flight, offsets committed every second (no result ordering).
For each side and simulator latency (0 and 200 ms):
  - throughput: `--runs` requests produced at once; runs/s from the first send to the last result;
  - latency: `--settle` s later, `--paced` requests at `--rate`/s (well under capacity);
    p50/p99 from send to result;
  - the worker's peak RSS (VmHWM of its process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contracts import RunRequest, RunResult, RunStatus  # noqa: E402
from app.devstack.llm_sim import start_simulator_process  # noqa: E402
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402

AGENT = "bench"
SYSTEM = "Answer briefly."


def write_project(root: Path, cap: int) -> Any:
    from app.project import load_project

    (root / "agents").mkdir(parents=True, exist_ok=True)
    agent = {
        "version": "1.0",
        "name": AGENT,
        "description": "benchmark agent",
        "model": "openai/sim-model",
        "system_prompt": SYSTEM,
        "max_iterations": 2,
        "max_concurrent_runs": cap,
        "retry_options": {"attempts": 1, "initial_delay": 0},
    }
    (root / "agents" / f"{AGENT}.yaml").write_text(yaml.safe_dump(agent))
    return load_project(root)


# -- the raw loop (runs in its own process: `bench_streams.py raw ...`) ---------------------------
async def raw_loop(bootstrap: str, prefix: str, base_url: str, cap: int) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from app.engine.llm import load_litellm

    litellm = load_litellm()
    names = TopicNames(prefix)
    consumer = AIOKafkaConsumer(
        names.request(AGENT),
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}raw",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    slots = asyncio.Semaphore(cap)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def handle(value: bytes) -> None:
        try:
            request = RunRequest.model_validate_json(value)
            started = time.time()
            response = await litellm.acompletion(
                model="openai/sim-model",
                api_base=base_url,
                api_key="sim",
                timeout=30,
                num_retries=0,
                max_retries=0,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": request.input["message"]}],
            )
            from datetime import UTC, datetime

            result = RunResult(
                run_id=request.run_id,
                agent=request.agent,
                status=RunStatus.COMPLETED,
                output=response.choices[0].message.content,
                started_at=datetime.fromtimestamp(started, UTC),
                ended_at=datetime.now(UTC),
                duration_ms=(time.time() - started) * 1000,
            )
            await (
                await producer.send(names.results, key=request.run_id.encode(), value=result.model_dump_json().encode())
            )
        finally:
            slots.release()

    print("consuming", file=sys.stderr, flush=True)
    last_commit = time.monotonic()
    running: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        for records in (await consumer.getmany(timeout_ms=100, max_records=cap)).values():
            for record in records:
                await slots.acquire()
                task = asyncio.create_task(handle(record.value))
                running.add(task)
                task.add_done_callback(running.discard)
        if time.monotonic() - last_commit > 1.0:
            await consumer.commit()
            last_commit = time.monotonic()
    await consumer.stop()
    await producer.stop()


# -- the driver -------------------------------------------------------------------------------------
async def start_side(
    side: str,
    project_dir: Path,
    bootstrap: str,
    prefix: str,
    base_url: str,
    cap: int,
    *,
    source: Path = ROOT,
    worker_args: Sequence[str] = (),
) -> asyncio.subprocess.Process:
    """`source`: the Ferry tree the worker runs from (another checkout compares two versions);
    `worker_args`: more `ferry worker` options (a Ferry side)."""
    env = dict(os.environ, FERRY_LLM_BASE_URL=base_url, LITELLM_LOCAL_MODEL_COST_MAP="True")
    if side.startswith("ferry"):
        args = [
            "-m",
            "app",
            "worker",
            "--project",
            str(project_dir),
            "--broker",
            bootstrap,
            "--app-id",
            f"{prefix}ferry",
            "--topic-prefix",
            prefix,
        ]
        if side == "ferry-notrace":
            args.append("--no-traces")
        args.extend(worker_args)
    else:
        args = [
            str(Path(__file__)),
            "raw",
            "--broker",
            bootstrap,
            "--prefix",
            prefix,
            "--base-url",
            base_url,
            "--cap",
            str(cap),
        ]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    while b"consuming" not in (line := await process.stderr.readline()):
        if not line:
            raise RuntimeError(f"{side} exited before consuming")
    asyncio.get_running_loop().create_task(process.stderr.read())
    return process


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(side: str, latency_ms: int, args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:6]}-{side}."
    names = TopicNames(prefix)
    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    project = write_project(tmp, args.cap)
    await apply_topics(args.broker, plan_topics(project, names))
    sim = start_simulator_process([], latency_ms=latency_ms, extra_args=["--no-record"])
    process = await start_side(side, tmp, args.broker, prefix, sim.base_url, args.cap)
    try:
        async with ResultWatcher(args.broker, names) as watcher, Submitter(args.broker, project, names) as sub:

            async def batch(count: int, rate: float | None) -> tuple[float, list[float]]:
                requests = [RunRequest.new(AGENT, {"message": f"run {i}"}) for i in range(count)]
                loop = asyncio.get_running_loop()
                sent: dict[str, float] = {}
                t0 = loop.time()
                # Read results while sending: an arrival is stamped when it is read.
                reader = asyncio.create_task(watcher.wait_for([r.run_id for r in requests], timeout=args.timeout))
                for i, request in enumerate(requests):
                    if rate is not None:
                        await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
                    sent[request.run_id] = loop.time()
                    await sub.send(request)
                    if rate is not None:
                        await sub.flush()
                await sub.flush()
                got = await reader
                if len(got) < count:
                    raise RuntimeError(f"{side}: only {len(got)}/{count} results")
                latencies = [(watcher.arrivals[r] - sent[r]) * 1000 for r in sent]
                return max(watcher.arrivals[r] for r in sent) - t0, latencies

            await batch(20, None)  # warm-up: assignment, imports, connections
            elapsed, _ = await batch(args.runs, None)
            await asyncio.sleep(args.settle)  # let the burst's after-work (commits, logging tasks) pass
            _, latencies = await batch(args.paced, args.rate)
        latencies.sort()
        return {
            "side": side,
            "latency_ms": latency_ms,
            "runs": args.runs,
            "runs_per_s": round(args.runs / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
            "peak_rss_mb": round(peak_rss_mb(process.pid), 1),
        }
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
        sim.stop()


async def main(args: argparse.Namespace) -> None:
    rows = []
    for latency in (0, 200):
        for side in args.sides.split(","):
            row = await measure(side, latency, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\nruns={args.runs} paced={args.paced}@{args.rate}/s cap={args.cap} "
        f"fetch_max_wait_ms={StreamSettings.model_fields['fetch_max_wait_ms'].default} "
        f"commit_interval_s={StreamSettings.model_fields['commit_interval_s'].default} "
        f"commit_every={StreamSettings.model_fields['commit_every'].default}"
    )
    print(f"{'side':13} {'sim ms':>6} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>12}")
    for row in rows:
        print(
            f"{row['side']:13} {row['latency_ms']:>6} {row['runs_per_s']:>8} {row['p50_ms']:>8} "
            f"{row['p99_ms']:>8} {row['peak_rss_mb']:>12}"
        )
    for latency in (0, 200):
        raw = next((r for r in rows if r["side"] == "raw" and r["latency_ms"] == latency), None)
        for row in rows:
            if raw is not None and row["side"] != "raw" and row["latency_ms"] == latency:
                print(f"sim {latency} ms: {row['side']}/raw throughput = {row['runs_per_s'] / raw['runs_per_s']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "raw":
        raw = argparse.ArgumentParser()
        raw.add_argument("raw")
        for flag in ("--broker", "--prefix", "--base-url"):
            raw.add_argument(flag, required=True)
        raw.add_argument("--cap", type=int, default=64)
        a = raw.parse_args()
        asyncio.run(raw_loop(a.broker, a.prefix, a.base_url, a.cap))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER", "").removeprefix("kafka://") or None)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--paced", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--cap", type=int, default=64, help="max_concurrent_runs / raw calls in flight")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds between the burst and the paced runs")
    parser.add_argument("--sides", default="raw,ferry,ferry-notrace", help="comma-separated, in order per latency")
    parsed = parser.parse_args()
    if parsed.broker is None:
        from app.cli.broker import broker_address

        parsed.broker = broker_address()
    if parsed.broker is None:
        sys.exit("no broker: set FERRY_BROKER or run `ferry dev up`")
    asyncio.run(main(parsed))
