"""`POST /v1/agents/{agent}/runs` → 202 latency of `ferry api` while a worker is busy.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_api.py [--requests 1000] [--concurrency 8 | --rate 100]

Processes: the LLM simulator (`--latency` ms per call), one `ferry worker` kept busy by a
backlog of `--backlog` requests produced straight to its topic before measuring, and
`ferry api` as a user starts it (SQLite history/keys store, a key from `ferry keys
create`). The driver (this process) sends `--requests` POSTs, either `--concurrency` in
flight (closed loop: measures capacity) or at `--rate` per second (open loop: latency at
a given load), over keep-alive connections (httpx), and times each from send to 202: produced
with acks=all, its submission recorded, its key checked. Each request carries an
Idempotency-Key, so the body-hash claim is on the measured path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contracts import RunRequest  # noqa: E402
from app.devstack.llm_sim import start_simulator_process  # noqa: E402
from app.streams import Submitter, TopicNames, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402
from bench.bench_streams import AGENT, peak_rss_mb, start_side, write_project  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_environment(tmp: Path) -> tuple[dict[str, str], str]:
    """The environment of a bench's `ferry api` (its own SQLite store) and an API key in it,
    made as a user makes one (`ferry keys create`)."""
    env = dict(os.environ, FERRY_DATABASE_URL=f"sqlite:///{tmp / 'history.db'}", LITELLM_LOCAL_MODEL_COST_MAP="True")
    token = subprocess.run(
        [sys.executable, "-m", "app", "keys", "create", "--tenant", "bench"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return env, token


async def start_api(
    project_dir: Path, bootstrap: str, prefix: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - set-up, before anything is measured
        [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(port), "--project", str(project_dir),
         "--broker", bootstrap, "--topic-prefix", prefix, "--rate", "100000", "--burst", "100000"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{url}/openapi.json")).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ferry api did not start")
            await asyncio.sleep(0.2)


async def post_all(url: str, token: str, count: int, concurrency: int, tag: str) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def sender() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"{tag}-{i}"}
                started = time.perf_counter()
                response = await client.post(
                    f"/v1/agents/{AGENT}/runs", json={"input": {"message": f"m{i}"}}, headers=headers
                )
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 202:
                    raise RuntimeError(f"POST answered {response.status_code}: {response.text}")

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies


async def post_paced(url: str, token: str, count: int, rate: float, tag: str) -> list[float]:
    """Open loop: one POST every 1/rate s whatever the answers do, as independent clients would."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"{tag}-{i}"}
            started = time.perf_counter()
            response = await client.post(
                f"/v1/agents/{AGENT}/runs", json={"input": {"message": f"m{i}"}}, headers=headers
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 202:
                raise RuntimeError(f"POST answered {response.status_code}: {response.text}")

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tasks = []
        for i in range(count):
            await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


async def main(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-api-{uuid.uuid4().hex[:6]}."
    names = TopicNames(prefix)
    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-api-"))
    project = write_project(tmp, args.cap)
    await apply_topics(args.broker, plan_topics(project, names))
    env, token = api_environment(tmp)
    sim = start_simulator_process([], latency_ms=args.latency, extra_args=["--no-record"])
    worker = await start_side("ferry", tmp, args.broker, prefix, sim.base_url, args.cap)
    api, url = await start_api(tmp, args.broker, prefix, env)
    try:
        async with Submitter(args.broker, project, names) as submitter:
            for i in range(args.backlog):
                await submitter.send(RunRequest.new(AGENT, {"message": f"backlog {i}"}))
            await submitter.flush()
        await post_all(url, token, 100, args.concurrency, "warm")
        started = time.perf_counter()
        if args.rate:
            latencies = sorted(await post_paced(url, token, args.requests, args.rate, "measured"))
        else:
            latencies = sorted(await post_all(url, token, args.requests, args.concurrency, "measured"))
        elapsed = time.perf_counter() - started
        return {
            "requests": args.requests,
            "mode": f"paced {args.rate:g}/s" if args.rate else f"closed loop, {args.concurrency} in flight",
            "backlog": args.backlog,
            "sim_latency_ms": args.latency,
            "posts_per_s": round(args.requests / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
            "max_ms": round(latencies[-1], 1),
            "api_peak_rss_mb": round(peak_rss_mb(api.pid), 1),
        }
    finally:
        api.terminate()
        api.wait(30)
        worker.terminate()
        await worker.wait()
        sim.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER"))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="closed loop: POSTs in flight")
    parser.add_argument("--rate", type=float, default=None, help="open loop instead: POSTs per second")
    parser.add_argument("--backlog", type=int, default=3000, help="requests queued for the worker before measuring")
    parser.add_argument("--latency", type=int, default=200, help="simulator latency per LLM call, ms")
    parser.add_argument("--cap", type=int, default=32, help="the agent's max_concurrent_runs")
    arguments = parser.parse_args()
    if not arguments.broker:
        sys.exit("set FERRY_BROKER or pass --broker")
    print(json.dumps(asyncio.run(main(arguments))))
