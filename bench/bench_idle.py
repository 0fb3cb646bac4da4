"""An idle `ferry worker`'s CPU, and one request's hop latency at low load.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_idle.py [--idle 20] [--hops 40] [-- worker args]

Starts `ferry worker` with its defaults (history projector, webhook connector, result index,
cancellation feed, traces, metrics) on a one-agent project against the LLM simulator
(its own process, `--latency` ms, 0 by default), runs 5 warm-up requests, waits `--settle` s, then:
  - idle: the worker process's CPU (utime+stime from /proc) over `--idle` s with no records,
    as % of one core;
  - hops: `--hops` requests one after another (each sent once the previous result arrived),
    request→result p50/p99: one hop through the worker at low load;
  - paced: `--paced` requests at `--rate`/s, each sent on time whatever the others do, so
    records also arrive while a fetch excluding their partition (records in hand) is pending:
    where a longer fetch wait would show; split into its legs by the result's own times:
    request sent → run started (intake), started → ended (the engine), ended → result seen.
Arguments after `--` go to `ferry worker` (e.g. `-- --fetch-max-wait-ms 100`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_peers import cpu_seconds, wait_consuming  # noqa: E402
from bench_streams import AGENT, write_project  # noqa: E402

from app.contracts import RunRequest  # noqa: E402
from app.devstack.llm_sim import start_simulator_process  # noqa: E402
from app.streams import ResultWatcher, Submitter, TopicNames, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402


def pct(ordered: list[float]) -> str:
    return f"{statistics.median(ordered):.1f}/{ordered[max(0, int(len(ordered) * 0.99) - 1)]:.1f} ms"


async def main(args: argparse.Namespace, worker_args: list[str]) -> None:
    prefix = f"idle-{uuid.uuid4().hex[:6]}."
    names = TopicNames(prefix)
    project_dir = Path(tempfile.mkdtemp(prefix="ferry-idle-"))
    project = write_project(project_dir, 64)
    await apply_topics(args.broker, plan_topics(project, names))
    sim = start_simulator_process([], latency_ms=args.latency, extra_args=["--no-record"])
    env = dict(os.environ, FERRY_LLM_BASE_URL=sim.base_url, FERRY_HOME=str(project_dir / "home"))
    command = [sys.executable, "-m", "app", "worker", "--project", str(project_dir), "--broker", args.broker,
               "--app-id", f"{prefix}ferry", "--topic-prefix", prefix, *worker_args]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        await wait_consuming(process, "ferry worker")
        async with ResultWatcher(args.broker, names) as watcher, Submitter(args.broker, project, names) as sub:
            loop = asyncio.get_running_loop()
            wall = time.time() - loop.time()  # loop clock (watcher.arrivals) → wall clock (RunResult times)
            legs: dict[str, tuple[float, float, float]] = {}  # run id → ms sent→started, started→ended, ended→seen

            async def one(i: int) -> float:
                request = RunRequest.new(AGENT, {"message": f"hop {i}"})
                reader = asyncio.create_task(watcher.wait_for([request.run_id], timeout=60))
                sent = loop.time()  # the clock of watcher.arrivals
                await sub.send(request)
                await sub.flush()
                if not await reader:
                    raise RuntimeError("no result within 60 s")
                result, seen = watcher.results[request.run_id], watcher.arrivals[request.run_id] + wall
                started, ended = result.started_at.timestamp(), result.ended_at.timestamp()
                legs[request.run_id] = ((started - sent - wall) * 1000, (ended - started) * 1000, (seen - ended) * 1000)
                return (watcher.arrivals[request.run_id] - sent) * 1000

            async def paced_one(i: int) -> float:
                await asyncio.sleep(i / args.rate)
                return await one(i)

            for i in range(5):
                await one(i)
            await asyncio.sleep(args.settle)
            cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
            await asyncio.sleep(args.idle)
            idle_pct = (cpu_seconds(process.pid) - cpu0) / (time.monotonic() - t0) * 100
            hops = sorted([await one(i) for i in range(args.hops)])
            legs.clear()
            paced = sorted(await asyncio.gather(*(paced_one(i) for i in range(args.paced))))
            split = [sorted(leg[k] for leg in legs.values()) for k in range(3)]
        print(
            f"worker args {worker_args or '(defaults)'}: idle CPU {idle_pct:.1f} % of a core over {args.idle:.0f} s; "
            f"hop p50 {statistics.median(hops):.1f} ms, p99 {hops[max(0, int(len(hops) * 0.99) - 1)]:.1f} ms "
            f"({args.hops} sequential runs); paced {args.rate:g}/s p50 {statistics.median(paced):.1f} ms, "
            f"p99 {paced[max(0, int(len(paced) * 0.99) - 1)]:.1f} ms (p50/p99 of its legs: request sent → run "
            f"started {pct(split[0])}, run started → ended {pct(split[1])}, ended → result seen {pct(split[2])}); "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
        sim.stop()


if __name__ == "__main__":
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER", "").removeprefix("kafka://") or None)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--hops", type=int, default=40)
    parser.add_argument("--paced", type=int, default=100, help="then this many runs at --rate/s, overlapping")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--latency", type=int, default=0, help="the simulator's model latency, ms")
    parsed = parser.parse_args(own)
    if parsed.broker is None:
        sys.exit("no broker: set FERRY_BROKER or run `ferry dev up`")
    asyncio.run(main(parsed, extra))
