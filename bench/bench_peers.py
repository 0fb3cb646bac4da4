"""Ferry beside its peers on one broker, in one invocation, one table.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_peers.py [--runs 400] [--cap 64]

Three workers doing the same work (one LLM call per request, `--cap` calls in flight),
each in its own process, against the LLM simulator in another (0 and 200 ms latency):
  - ferry:   `ferry worker` with its defaults (traces, history, metrics on, commit after result);
  - raw:     an aiokafka consumer → aiohttp POST /chat/completions → produce a RunResult,
             offsets committed every second, on the event loop Ferry runs on (uvloop unless
             FERRY_EVENT_LOOP=asyncio): the physical limit of this workload here;
  - ferry-base (with `--baseline DIR`): `ferry worker` run from another Ferry tree (e.g. the
             previous commit, `git archive <commit> | tar -x -C DIR`), to compare two versions
             in one run;
  - raw-twin: the raw loop again, in a process of its own: what the paced p99 of two
             identical workers differs by in one round is the floor under any gap to raw;
  - calfkit: Calfkit 0.13 (`bench/peers_calfkit.py`), installed by this bench into its own
             virtual environment (`--calfkit-venv`, created on first use with
             `pip install calfkit==0.13.0 faststream==0.7.5`), driven by its own client.
Per cell: a warm-up of 20 runs, then `--runs` requests sent at once; runs/s from the first
send to the last result, request→result p50/p99 of that burst, the worker process's CPU
(utime+stime from /proc) over the burst per run, and its peak RSS (VmHWM). Then the paced
half load: requests sent on schedule at half the cell's burst runs/s for `--paced-seconds`,
each whatever the others do (`--settle` s after the burst), request→result p50/p99, and
the p50/p99 of its legs by the result's own times (JSON rows; p99 in the summary): intake
(request sent → run started), engine (started → ended), out (ended → result seen).
`--rounds N` runs every cell N times, the sides' order reversed every other round, and
prints each comparison's median over the rounds: on a shared 2-core machine one round's
paced p99 moves by tens of ms with whatever else runs (bench/RESULTS.md).

Two workloads (`--workloads`): `one`, one LLM call per run; `multi`, 3 LLM calls and 2 tools
per run (the simulator asks for tool `step_one`, then `step_two`, then answers): Ferry with
its default retry policy, traces, checkpoints of every step; the raw loop makes the same
3 calls one after another, running the tools inline; Calfkit with its tools as
`agent_tool` nodes (each call a hop through Kafka, Calfkit's design). `CPU ms/step` is the
CPU per run divided by its 5 steps; `calls/run` is the simulator's count of chat calls over
the runs of the cell (1 and 3 when every side did the work asked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
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

from app.cli.process_main import event_loop_factory  # noqa: E402
from app.contracts import RunRequest, RunResult, RunStatus  # noqa: E402
from app.contracts.errors import FerryError  # noqa: E402

AGENT = "bench"
SYSTEM = "Answer briefly."
CALFKIT_PINS = ("calfkit==0.13.0", "faststream==0.7.5")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP = 20  # runs before each cell's burst (peers_calfkit.py's driver sends as many)


# -- the raw loop (its own process: `bench_peers.py raw ...`) --------------------------------------
STEPS = {"one": 1, "multi": 5}  # LLM calls + tool calls per run
#: Per run of a paced batch, ms: request sent → run started, started → ended, ended → result seen.
Legs = tuple[list[float], list[float], list[float]]
TOOL_SCHEMAS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"Step {name}: returns the text, transformed.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        },
    }
    for name in ("step_one", "step_two")
]
TOOLS_SOURCE = '''"""Two trivial tools for the multi-step bench."""


def step_one(text: str) -> str:
    """Step one: the text in upper case."""
    return text.upper()


def step_two(text: str) -> str:
    """Step two: the text reversed."""
    return text[::-1]
'''


def multi_step_rules(one: str = "step_one", two: str = "step_two") -> list[Any]:
    """Call 1 asks for tool `one`, call 2 for tool `two`, call 3 answers."""
    from app.devstack.llm_sim import Match, Rule, TextReply, ToolCall, ToolCallsReply

    return [
        Rule(match=Match(assistant_turns=0), reply=ToolCallsReply(calls=[ToolCall(name=one, arguments={"text": "a"})])),
        Rule(match=Match(assistant_turns=1), reply=ToolCallsReply(calls=[ToolCall(name=two, arguments={"text": "b"})])),
        Rule(reply=TextReply(text="done after two tools")),
    ]


def raw_tool(name: str, arguments: str) -> str:
    text = json.loads(arguments).get("text", "")
    return text.upper() if name == "step_one" else text[::-1]


async def raw_loop(bootstrap: str, prefix: str, base_url: str, cap: int, workload: str = "one") -> None:
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
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
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
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": request.input["message"]},
            ]
            body: dict[str, Any] = {"model": "sim-model", "messages": messages}
            if workload == "multi":
                body["tools"] = TOOL_SCHEMAS
            for _ in range(5):  # the same sequence of calls as the agent: call, tools, call, …
                async with session.post(url, json=body, headers={"Authorization": "Bearer sim"}) as response:
                    reply = await response.json()
                message = reply["choices"][0]["message"]
                if not message.get("tool_calls"):
                    break
                messages.append(message)
                for call in message["tool_calls"]:
                    output = raw_tool(call["function"]["name"], call["function"]["arguments"])
                    messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
            ended = datetime.now(UTC)
            result = RunResult(
                run_id=request.run_id,
                agent=request.agent,
                status=RunStatus.COMPLETED,
                output=message["content"],
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


def p50_p99(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return round(statistics.median(ordered), 1), round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 1)


def row(
    side: str,
    workload: str,
    latency_ms: int,
    runs: int,
    elapsed: float,
    latencies: list[float],
    cpu_s: float,
    rss: float,
    paced: tuple[float, list[float]] | None,
) -> dict[str, Any]:
    """One cell; `sent` (warm-up, burst and paced runs) is how many runs the simulator's calls are of."""
    p50, p99 = p50_p99(latencies)
    paced_p50, paced_p99 = p50_p99(paced[1]) if paced else (None, None)
    return {
        "side": side,
        "workload": workload,
        "sim_ms": latency_ms,
        "runs": runs,
        "runs_per_s": round(runs / elapsed, 1),
        "p50_ms": p50,
        "p99_ms": p99,
        "paced_per_s": round(paced[0], 1) if paced else None,
        "paced_p50_ms": paced_p50,
        "paced_p99_ms": paced_p99,
        "cpu_ms_per_run": round(cpu_s * 1000 / runs, 2),
        "cpu_ms_per_step": round(cpu_s * 1000 / runs / STEPS[workload], 2),
        "peak_rss_mb": round(rss, 1),
        "sent": WARM_UP + runs + (len(paced[1]) if paced else 0),
    }


def paced_count(burst_runs_per_s: float, seconds: float) -> tuple[float, int]:
    """Half the burst's runs/s, for `seconds` (at least 20 runs)."""
    rate = burst_runs_per_s / 2
    return rate, max(20, round(rate * seconds))


# -- Ferry and the raw loop: driven by Ferry's own submitter and result watcher ---------------------
def write_multi_step_project(root: Path, cap: int) -> Any:
    """The one-call bench agent with two tools and Ferry's default retry policy."""
    import yaml

    from app.project import load_project

    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "tools").mkdir(exist_ok=True)
    (root / "tools" / "bench_tools.py").write_text(TOOLS_SOURCE)
    agent = {
        "version": "1.0",
        "name": AGENT,
        "description": "benchmark agent, 3 LLM calls and 2 tools per run",
        "model": "openai/sim-model",
        "system_prompt": SYSTEM,
        "tools": ["bench_tools.step_one", "bench_tools.step_two"],
        "max_iterations": 5,
        "max_concurrent_runs": cap,
    }
    (root / "agents" / f"{AGENT}.yaml").write_text(yaml.safe_dump(agent))
    return load_project(root)


async def measure_kafka_side(
    side: str, workload: str, latency_ms: int, base_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    from bench_streams import start_side, write_project

    from app.streams import ResultWatcher, Submitter, TopicNames, apply_topics
    from app.streams.topic_plan import plan_topics

    prefix = f"peers-{uuid.uuid4().hex[:6]}-{side}."
    names = TopicNames(prefix)
    project_dir = Path(tempfile.mkdtemp(prefix="ferry-peers-"))
    project = (write_multi_step_project if workload == "multi" else write_project)(project_dir, args.cap)
    os.environ["FERRY_HOME"] = str(project_dir / "home")  # the worker's history store: its own
    await apply_topics(args.broker, plan_topics(project, names))
    if side in ("ferry", "ferry-base"):
        source = Path(args.baseline) if side == "ferry-base" else ROOT
        process = await start_side(
            "ferry", project_dir, args.broker, prefix, base_url, args.cap, source=source, worker_args=args.ferry_args
        )
    else:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__)), "raw", "--broker", args.broker, "--prefix", prefix,
            "--base-url", base_url, "--cap", str(args.cap), "--workload", workload,
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        await wait_consuming(process, side)
    try:
        async with ResultWatcher(args.broker, names) as watcher, Submitter(args.broker, project, names) as sub:

            async def batch(count: int, rate: float | None = None) -> tuple[float, list[float], Legs]:
                """`count` runs at once, or each on schedule at `rate`/s whatever the others do;
                each run's request→result time and its legs."""
                requests = [RunRequest.new(AGENT, {"message": f"run {i}"}) for i in range(count)]
                loop = asyncio.get_running_loop()
                sent: dict[str, float] = {}
                t0 = loop.time()
                reader = asyncio.create_task(watcher.wait_for([r.run_id for r in requests], timeout=args.timeout))
                for i, request in enumerate(requests):
                    if rate is not None and (delay := t0 + i / rate - loop.time()) > 0:
                        await asyncio.sleep(delay)
                    sent[request.run_id] = loop.time()
                    await sub.send(request)
                    if rate is not None:
                        await sub.flush()
                await sub.flush()
                got = await reader
                if len(got) < count:
                    raise RuntimeError(f"{side}: only {len(got)}/{count} results")
                wall = time.time() - loop.time()  # loop clock (sent, arrivals) → wall clock (result times)
                legs: Legs = ([], [], [])
                for run_id, at in sent.items():
                    result, seen = watcher.results[run_id], watcher.arrivals[run_id]
                    started, ended = result.started_at.timestamp() - wall, result.ended_at.timestamp() - wall
                    for leg, ms in zip(legs, ((started - at), (ended - started), (seen - ended)), strict=True):
                        leg.append(ms * 1000)
                return (
                    max(watcher.arrivals[r] for r in sent) - t0,
                    [(watcher.arrivals[r] - sent[r]) * 1000 for r in sent],
                    legs,
                )

            runs = args.runs if workload == "one" else args.multi_runs
            await batch(WARM_UP)  # warm-up: assignment, imports, connections
            cpu0 = cpu_seconds(process.pid)
            elapsed, latencies, _ = await batch(runs)
            cpu = cpu_seconds(process.pid) - cpu0
            rate, count = paced_count(runs / elapsed, args.paced_seconds)
            await asyncio.sleep(args.settle)  # the burst's tail (traces, history projection) settles
            _, paced_latencies, legs = await batch(count, rate)
        result = row(
            side, workload, latency_ms, runs, elapsed, latencies, cpu, peak_rss_mb(process.pid), (rate, paced_latencies)
        )
        for name, leg in zip(("intake", "engine", "out"), legs, strict=True):
            result[f"paced_{name}_p50_p99_ms"] = p50_p99(leg)
        return result
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


def calfkit_tool_names(agent: str) -> tuple[str, str]:
    """Calfkit's tool topics are global (`tool.<name>.input`): names of this cell's own."""
    tag = agent.replace("-", "_")
    return f"{tag}_one", f"{tag}_two"


async def measure_calfkit(
    workload: str, latency_ms: int, base_url: str, args: argparse.Namespace, agent: str
) -> dict[str, Any]:
    python = args.calfkit_python
    script = str(ROOT / "bench" / "peers_calfkit.py")
    runs = args.runs if workload == "one" else args.multi_runs
    common = ["--broker", args.broker, "--agent", agent]
    tools = ["--tools", ",".join(calfkit_tool_names(agent))] if workload == "multi" else []
    worker = await asyncio.create_subprocess_exec(
        python, script, "worker", *common, "--base-url", base_url, "--cap", str(args.cap), *tools,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    driver: asyncio.subprocess.Process | None = None
    log = tempfile.NamedTemporaryFile(prefix="ferry-peers-calfkit-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        await wait_consuming(worker, "calfkit")
        driver = await asyncio.create_subprocess_exec(
            python, script, "drive", *common, "--runs", str(runs), "--timeout", str(args.timeout),
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
        rate, count = paced_count(runs / result["elapsed_s"], args.paced_seconds)
        await asyncio.sleep(args.settle)
        driver.stdin.write(f"paced {rate} {count}\n".encode())
        await driver.stdin.drain()
        line = await asyncio.wait_for(driver.stdout.readline(), args.timeout)
        if not line:
            raise RuntimeError(f"calfkit driver exited before the paced runs' results (its log: {log.name})")
        paced = (rate, json.loads(line)["latencies_ms"])
        rss = peak_rss_mb(worker.pid)
        return row("calfkit", workload, latency_ms, runs, result["elapsed_s"], result["latencies_ms"], cpu, rss, paced)
    finally:
        if driver is not None:
            await stop_process(driver)
        await stop_process(worker)
        log.close()


async def http_get(host: str, port: int, path: str) -> bytes:
    """The body of one HTTP/1.0 GET (the simulator's stats, a worker's /metrics), no client library."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    return response.split(b"\r\n\r\n", 1)[-1]


async def sim_stats(base_url: str) -> dict[str, Any]:
    host, port = base_url.split("//")[1].split("/")[0].split(":")
    stats: dict[str, Any] = json.loads(await http_get(host, int(port), "/_sim/stats?requests=0"))
    return stats


async def sim_calls(base_url: str) -> int:
    """Chat calls the simulator answered (its stats): 3 per run in the multi-step workload, if it ran."""
    return int((await sim_stats(base_url))["calls_total"])


async def main(args: argparse.Namespace) -> None:
    from app.devstack.llm_sim import start_simulator_process

    rows: list[dict[str, Any]] = []
    started = time.strftime("%H:%M:%S", time.gmtime())
    load_before = os.getloadavg()[0]
    sides = args.sides.split(",")
    for round_number in range(1, args.rounds + 1):
        for workload in args.workloads.split(","):
            for latency in args.latencies:
                for side in sides if round_number % 2 else sides[::-1]:  # every other round in reverse
                    agent = f"peers-{uuid.uuid4().hex[:6]}"
                    rules = []
                    if workload == "multi":
                        rules = (
                            multi_step_rules(*calfkit_tool_names(agent)) if side == "calfkit" else multi_step_rules()
                        )
                    sim = start_simulator_process(rules, latency_ms=latency, extra_args=["--no-record"])
                    try:
                        if side == "calfkit":
                            result = await measure_calfkit(workload, latency, sim.base_url, args, agent)
                        else:
                            result = await measure_kafka_side(side, workload, latency, sim.base_url, args)
                        result["llm_calls_per_run"] = round(await sim_calls(sim.base_url) / result["sent"], 2)
                    except (RuntimeError, OSError, TimeoutError, FerryError) as error:  # a failed cell is a row
                        result = {"side": side, "workload": workload, "sim_ms": latency, "error": str(error)}
                    finally:
                        sim.stop()
                    result["round"] = round_number
                    rows.append(result)
                    print(json.dumps(result), flush=True)
    print(
        f"\n{started}–{time.strftime('%H:%M:%S', time.gmtime())} UTC, load {load_before:.1f} → "
        f"{os.getloadavg()[0]:.1f}; burst: runs={args.runs} (one) / {args.multi_runs} (multi) per cell at once, "
        f"cap={args.cap} in flight; paced: half the cell's burst runs/s for {args.paced_seconds:g} s"
    )
    print(
        f"{'worker':10} {'load':5} {'sim ms':>6} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'paced/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/run':>11} {'ms/step':>8} {'peak RSS MB':>12} "
        f"{'calls/run':>9}"
    )
    for r in rows:
        if "error" in r:
            last = [line for line in str(r["error"]).splitlines() if line.strip()][-1:] or ["?"]
            print(f"{r['side']:10} {r['workload']:5} {r['sim_ms']:>6}  failed: {last[0].strip()}")
            continue
        print(
            f"{r['side']:10} {r['workload']:5} {r['sim_ms']:>6} {r['runs_per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['paced_per_s']:>8} {r['paced_p50_ms']:>8} {r['paced_p99_ms']:>8} "
            f"{r['cpu_ms_per_run']:>11} {r['cpu_ms_per_step']:>8} {r['peak_rss_mb']:>12} {r['llm_calls_per_run']:>9}"
        )
    for workload in args.workloads.split(","):
        for latency in args.latencies:
            per_round = [
                {r["side"]: r for r in rows if (r["workload"], r["sim_ms"], r["round"]) == (workload, latency, n)}
                for n in range(1, args.rounds + 1)
            ]
            comparisons: dict[str, list[float]] = {}
            for cell in per_round:
                cell = {side: r for side, r in cell.items() if "error" not in r}
                if "ferry" in cell:
                    for other in ("raw", "calfkit", "ferry-base"):
                        if other in cell:
                            ratio = cell["ferry"]["runs_per_s"] / cell[other]["runs_per_s"]
                            comparisons.setdefault(f"runs/s ferry/{other}", []).append(ratio)
                for side in ("ferry", "raw-twin"):
                    if side in cell and "raw" in cell:
                        gap = cell[side]["paced_p99_ms"] - cell["raw"]["paced_p99_ms"]
                        comparisons.setdefault(f"paced p99 {side} − raw (ms)", []).append(gap)
            for name, values in comparisons.items():
                each = ", ".join(f"{v:+.1f}" if "ms" in name else f"{v:.2f}" for v in values)
                median = statistics.median(values)
                summary = f"{median:+.1f}" if "ms" in name else f"{median:.2f}"
                rounds = f" (median of {len(values)} rounds: {each})" if len(values) > 1 else ""
                print(f"{workload} sim {latency} ms {name} = {summary}{rounds}")
            for side in sides:
                legs = [cell[side] for cell in per_round if side in cell and "paced_intake_p50_p99_ms" in cell[side]]
                if legs:
                    text = "; ".join(
                        " / ".join(f"{name} {r[f'paced_{name}_p50_p99_ms'][1]}" for name in ("intake", "engine", "out"))
                        for r in legs
                    )
                    print(f"{workload} sim {latency} ms {side} paced p99 legs, ms: {text}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "raw":
        raw = argparse.ArgumentParser()
        raw.add_argument("raw")
        for flag in ("--broker", "--prefix", "--base-url"):
            raw.add_argument(flag, required=True)
        raw.add_argument("--cap", type=int, default=64)
        raw.add_argument("--workload", choices=list(STEPS), default="one")
        a = raw.parse_args()
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:  # the loop Ferry runs on
            runner.run(raw_loop(a.broker, a.prefix, a.base_url, a.cap, a.workload))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER", "").removeprefix("kafka://") or None)
    parser.add_argument("--runs", type=int, default=400, help="burst of the one-call workload")
    parser.add_argument("--multi-runs", type=int, default=200, help="burst of the multi-step workload")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between a cell's burst and its paced runs")
    parser.add_argument(
        "--ferry-args", type=shlex.split, default=[], help="more `ferry worker` options for the Ferry sides"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every cell this many times, the sides' order reversed every other round",
    )
    parser.add_argument("--workloads", default="one,multi", help="comma-separated: one, multi")
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
