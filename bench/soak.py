"""A worker under steady half load for a long while: does anything grow?

    FERRY_BROKER=host:port .venv/bin/python bench/soak.py [--minutes 30] [--rate 30] [--latency 200]

One `ferry worker` with its defaults (traces, history, metrics, checkpoints) runs one-call
runs against the LLM simulator (`--latency` ms per call) fed at `--rate` runs/s, paced,
for `--minutes`. Every `--every` seconds it prints one row: runs submitted and finished
so far, the worker's RSS, open file descriptors (sockets included), threads, and the CPU
it used since the previous row. What a leak looks like: RSS, descriptors or threads
climbing row after row at the same load; the first minutes are warm-up (caches, pools).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contracts import RunRequest  # noqa: E402
from app.devstack.llm_sim import start_simulator_process  # noqa: E402
from app.streams import ResultWatcher, Submitter, TopicNames, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402
from bench.bench_peers import cpu_seconds  # noqa: E402
from bench.bench_streams import AGENT, start_side, write_project  # noqa: E402


def sample(pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
        "cpu_s": cpu_seconds(pid),
    }


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    prefix = f"soak-{uuid.uuid4().hex[:6]}."
    names = TopicNames(prefix)
    tmp = Path(tempfile.mkdtemp(prefix="ferry-soak-"))
    project = write_project(tmp, args.cap)
    await apply_topics(args.broker, plan_topics(project, names))
    sim = start_simulator_process([], latency_ms=args.latency, extra_args=["--no-record"])
    worker = await start_side("ferry", tmp, args.broker, prefix, sim.base_url, args.cap)
    rows: list[dict[str, Any]] = []
    try:
        async with ResultWatcher(args.broker, names) as watcher, Submitter(args.broker, project, names) as submitter:
            loop = asyncio.get_running_loop()
            started = loop.time()
            end = started + args.minutes * 60
            submitted = 0
            last = sample(worker.pid)
            next_row = started + args.every

            async def collect() -> None:
                while True:
                    await watcher.poll()

            collector = asyncio.create_task(collect())
            try:
                while loop.time() < end:
                    due = started + submitted / args.rate
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    await submitter.send(RunRequest.new(AGENT, {"message": f"soak {submitted}"}))
                    submitted += 1
                    if loop.time() >= next_row:
                        now = sample(worker.pid)
                        row = {
                            "minute": round((loop.time() - started) / 60, 1),
                            "submitted": submitted,
                            "finished": len(watcher.results),
                            **{k: now[k] for k in ("rss_mb", "fds", "threads")},
                            "cpu_share": round((now["cpu_s"] - last["cpu_s"]) / args.every, 3),
                        }
                        last = now
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        next_row += args.every
            finally:
                collector.cancel()
    finally:
        worker.terminate()
        await worker.wait()
        sim.stop()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER"))
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=30, help="runs submitted per second, paced")
    parser.add_argument("--latency", type=int, default=200, help="simulator latency per LLM call, ms")
    parser.add_argument("--cap", type=int, default=64)
    parser.add_argument("--every", type=float, default=60, help="seconds between rows")
    arguments = parser.parse_args()
    if not arguments.broker:
        sys.exit("set FERRY_BROKER or pass --broker")
    t0 = time.time()
    asyncio.run(main(arguments))
    print(f"# soak of {arguments.minutes:g} min done in {time.time() - t0:.0f} s", flush=True)
