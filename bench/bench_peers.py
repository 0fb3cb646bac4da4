"""Ferry beside its peers on one broker, in one invocation, one table.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_peers.py [--runs 400] [--cap 64]

Three workers doing the same work (one LLM call per request, `--cap` calls in flight),
each in its own process, against the LLM simulator in another (0 and 200 ms latency):
  - ferry:   `ferry worker` with its defaults (traces, history, metrics on, commit after result);
  - raw:     an aiokafka consumer → aiohttp POST /chat/completions → produce a RunResult,
             offsets committed every second: the physical limit of this workload here;
  - ferry-base (with `--baseline DIR`): `ferry worker` run from another Ferry tree (e.g. the
             previous commit, `git archive <commit> | tar -x -C DIR`), to compare two versions
             in one run;
  - calfkit: Calfkit 0.13 (`bench/peers_calfkit.py`), installed by this bench into its own
             virtual environment (`--calfkit-venv`, created on first use with
             `pip install calfkit==0.13.0 faststream==0.7.5`), driven by its own client.
Per cell: a warm-up of 20 runs, then `--runs` requests sent at once; runs/s from the first
send to the last result, request→result p50/p99 of that burst, the worker process's CPU
(utime+stime from /proc) over the burst per run, and its peak RSS (VmHWM).
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app.contracts import RunRequest, RunResult, RunStatus  # noqa: E402
from app.contracts.errors import FerryError  # noqa: E402

AGENT = "bench"
SYSTEM = "Answer briefly."
CALFKIT_PINS = ("calfkit==0.13.0", "faststream==0.7.5")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the raw loop (its own process: `bench_peers.py raw ...`) --------------------------------------
async def raw_loop(bootstrap: str, prefix: str, base_url: str, cap: int) -> None:
    import aiohttp
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from app.streams import TopicNames

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
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=cap))
    await consumer.start()
    await producer.start()
    slots = asyncio.Semaphore(cap)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    url = f"{base_url.rstrip('/')}/chat/completions"

    async def handle(value: bytes) -> None:
        from datetime import UTC, datetime

        try:
            request = RunRequest.model_validate_json(value)
            started = datetime.now(UTC)
            body = {
                "model": "sim-model",
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": request.input["message"]},
                ],
            }
            async with session.post(url, json=body, headers={"Authorization": "Bearer sim"}) as response:
                reply = await response.json()
            ended = datetime.now(UTC)
            result = RunResult(
                run_id=request.run_id,
                agent=request.agent,
                status=RunStatus.COMPLETED,
                output=reply["choices"][0]["message"]["content"],
                started_at=started,
                ended_at=ended,
                duration_ms=(ended - started).total_seconds() * 1000,
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
    await session.close()


# -- measuring a worker process ---------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_consuming(process: asyncio.subprocess.Process, side: str) -> None:
    assert process.stderr is not None
    tail: list[bytes] = []
    while b"consuming" not in (line := await process.stderr.readline()):
        if not line:
            raise RuntimeError(f"{side} exited before consuming: {b''.join(tail[-5:]).decode(errors='replace')}")
        tail.append(line)
    asyncio.get_running_loop().create_task(drain(process.stderr))


async def drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def row(
    side: str, latency_ms: int, runs: int, elapsed: float, latencies: list[float], cpu_s: float, rss: float
) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {
        "side": side,
        "sim_ms": latency_ms,
        "runs": runs,
        "runs_per_s": round(runs / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1),
        "cpu_ms_per_run": round(cpu_s * 1000 / runs, 2),
        "peak_rss_mb": round(rss, 1),
    }


# -- Ferry and the raw loop: driven by Ferry's own submitter and result watcher ---------------------
async def measure_kafka_side(side: str, latency_ms: int, base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from bench_streams import start_side, write_project

    from app.streams import ResultWatcher, Submitter, TopicNames, apply_topics
    from app.streams.topic_plan import plan_topics

    prefix = f"peers-{uuid.uuid4().hex[:6]}-{side}."
    names = TopicNames(prefix)
    project_dir = Path(tempfile.mkdtemp(prefix="ferry-peers-"))
    project = write_project(project_dir, args.cap)
    os.environ["FERRY_HOME"] = str(project_dir / "home")  # the worker's history store: its own
    await apply_topics(args.broker, plan_topics(project, names))
    if side in ("ferry", "ferry-base"):
        source = Path(args.baseline) if side == "ferry-base" else ROOT
        process = await start_side("ferry", project_dir, args.broker, prefix, base_url, args.cap, source=source)
    else:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__)), "raw", "--broker", args.broker, "--prefix", prefix,
            "--base-url", base_url, "--cap", str(args.cap),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        await wait_consuming(process, side)
    try:
        async with ResultWatcher(args.broker, names) as watcher, Submitter(args.broker, project, names) as sub:

            async def batch(count: int) -> tuple[float, list[float]]:
                requests = [RunRequest.new(AGENT, {"message": f"run {i}"}) for i in range(count)]
                loop = asyncio.get_running_loop()
                sent: dict[str, float] = {}
                t0 = loop.time()
                reader = asyncio.create_task(watcher.wait_for([r.run_id for r in requests], timeout=args.timeout))
                for request in requests:
                    sent[request.run_id] = loop.time()
                    await sub.send(request)
                await sub.flush()
                got = await reader
                if len(got) < count:
                    raise RuntimeError(f"{side}: only {len(got)}/{count} results")
                return max(watcher.arrivals[r] for r in sent) - t0, [
                    (watcher.arrivals[r] - sent[r]) * 1000 for r in sent
                ]

            await batch(20)  # warm-up: assignment, imports, connections
            cpu0 = cpu_seconds(process.pid)
            elapsed, latencies = await batch(args.runs)
            cpu = cpu_seconds(process.pid) - cpu0
        return row(side, latency_ms, args.runs, elapsed, latencies, cpu, peak_rss_mb(process.pid))
    finally:
        await stop_process(process)


# -- Calfkit: its own venv, worker and client ------------------------------------------------------
def calfkit_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {' '.join(CALFKIT_PINS)} into {venv} …", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *CALFKIT_PINS], check=True)
    return python


async def measure_calfkit(latency_ms: int, base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    python = args.calfkit_python
    script = str(ROOT / "bench" / "peers_calfkit.py")
    agent = f"peers-{uuid.uuid4().hex[:6]}"
    common = ["--broker", args.broker, "--agent", agent]
    worker = await asyncio.create_subprocess_exec(
        python, script, "worker", *common, "--base-url", base_url, "--cap", str(args.cap),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    driver: asyncio.subprocess.Process | None = None
    log = tempfile.NamedTemporaryFile(prefix="ferry-peers-calfkit-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        await wait_consuming(worker, "calfkit")
        driver = await asyncio.create_subprocess_exec(
            python, script, "drive", *common, "--runs", str(args.runs), "--timeout", str(args.timeout),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )  # fmt: skip
        assert driver.stdout is not None and driver.stdin is not None
        if (await asyncio.wait_for(driver.stdout.readline(), args.timeout)).strip() != b"warm":
            raise RuntimeError(f"calfkit driver failed during warm-up (its log: {log.name})")
        cpu0 = cpu_seconds(worker.pid)
        driver.stdin.write(b"go\n")
        await driver.stdin.drain()
        line = await asyncio.wait_for(driver.stdout.readline(), args.timeout)
        cpu = cpu_seconds(worker.pid) - cpu0
        if not line:
            raise RuntimeError(f"calfkit driver exited without a result (its log: {log.name})")
        result = json.loads(line)
        return row(
            "calfkit", latency_ms, args.runs, result["elapsed_s"], result["latencies_ms"], cpu, peak_rss_mb(worker.pid)
        )
    finally:
        if driver is not None:
            await stop_process(driver)
        await stop_process(worker)
        log.close()


async def main(args: argparse.Namespace) -> None:
    from app.devstack.llm_sim import start_simulator_process

    rows: list[dict[str, Any]] = []
    for latency in args.latencies:
        for side in args.sides.split(","):
            sim = start_simulator_process([], latency_ms=latency, extra_args=["--no-record"])
            try:
                if side == "calfkit":
                    result = await measure_calfkit(latency, sim.base_url, args)
                else:
                    result = await measure_kafka_side(side, latency, sim.base_url, args)
            except (RuntimeError, OSError, TimeoutError, FerryError) as error:  # a failed cell is a row
                result = {"side": side, "sim_ms": latency, "error": str(error)}
            finally:
                sim.stop()
            rows.append(result)
            print(json.dumps(result), flush=True)
    print(f"\nruns={args.runs} per cell at once, cap={args.cap} in flight, load {os.getloadavg()[0]:.1f}")
    header = (
        f"{'worker':10} {'sim ms':>6} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/run':>11} {'peak RSS MB':>12}"
    )
    print(header)
    for r in rows:
        if "error" in r:
            last = [line for line in str(r["error"]).splitlines() if line.strip()][-1:] or ["?"]
            print(f"{r['side']:10} {r['sim_ms']:>6}  failed: {last[0].strip()}")
            continue
        print(
            f"{r['side']:10} {r['sim_ms']:>6} {r['runs_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['cpu_ms_per_run']:>11} {r['peak_rss_mb']:>12}"
        )
    for latency in args.latencies:
        cell = {r["side"]: r for r in rows if r["sim_ms"] == latency and "error" not in r}
        if "ferry" in cell:
            ratios = [
                f"ferry/{s} = {cell['ferry']['runs_per_s'] / cell[s]['runs_per_s']:.2f}"
                for s in ("raw", "calfkit", "ferry-base")
                if s in cell
            ]
            print(f"sim {latency} ms runs/s: " + ", ".join(ratios))


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
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--cap", type=int, default=64, help="runs in flight per worker")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--sides", default="ferry,raw,calfkit", help="comma-separated, in order per latency")
    parser.add_argument("--latencies", type=lambda s: [int(x) for x in s.split(",")], default=[0, 200])
    parser.add_argument("--calfkit-venv", default="~/.cache/ferry/bench-calfkit-venv")
    parser.add_argument("--baseline", help="a Ferry source tree to run as the side ferry-base (same venv)")
    parsed = parser.parse_args()
    if parsed.broker is None:
        sys.exit("no broker: set FERRY_BROKER or run `ferry dev up`")
    if "ferry-base" in parsed.sides.split(",") and not parsed.baseline:
        sys.exit("the side ferry-base needs --baseline DIR")
    if "calfkit" in parsed.sides.split(","):
        parsed.calfkit_python = str(calfkit_python(Path(parsed.calfkit_venv).expanduser()))
    asyncio.run(main(parsed))
