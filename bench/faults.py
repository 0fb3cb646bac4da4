"""The fault suite: what a user of Ferry loses when things break, one scenario at a time.

    FERRY_BROKER=host:port .venv/bin/python bench/faults.py [--only worker-kill,llm-storm] [--short]

Every scenario runs LLM → tool → LLM runs (`ferry worker` processes against the LLM
simulator, which logs every request) and prints one row:

    submitted   runs produced
    completed   runs whose one result is `completed`
    lost        runs with no result at the end
    run twice   runs with more than one result
    re-paid     LLM steps answered more than once (the same run's same step), against
                `in flight`: the calls at the model at the moment of the fault, the most
                a crash may re-pay (a completed step is checkpointed and replayed)
    re-asked    LLM steps requested more than once, answered or not (a call cut off by
                the fault and made again; in the storm, refused calls retried are not
                counted: they are the storm)

Scenarios:
    worker-kill     SIGKILL a worker with --runs (600) in flight, start a new one
    broker-kill     kill -9 a private broker mid-load (the dev stack's own start; the shared
                    FERRY_BROKER is never touched), start it again 15 s later
    llm-storm       30 % of calls answer 429 or 503 with Retry-After: 1 for a minute (6
                    attempts per call, then later tries after 5, 15, 30 s)
    llm-down        every call's connection reset for 30 s (runs wait on the retry topics)
    rebalance-storm workers joining and leaving every 4 s for 40 s under load

`--short` divides runs and durations by 4 (what the test suite's versions do).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.contracts import RunRequest, RunStatus  # noqa: E402
from app.devstack.llm_sim import (  # noqa: E402
    FaultKind,
    FaultReply,
    LLMSimulator,
    Match,
    Rule,
    SequenceReply,
    TextReply,
    ToolCall,
    ToolCallsReply,
)
from app.project import load_project  # noqa: E402
from app.streams import ResultWatcher, Submitter, TopicNames  # noqa: E402

AGENT = "faulty"
TOOL = '''
def price(code: str) -> dict:
    """A price."""
    return {"code": code, "price": 42}
'''
ASK = ToolCallsReply(calls=[ToolCall(name="price", arguments={"code": "A1"})])
ANSWER = TextReply(text="42")


def healthy(step_ms: int) -> list[Rule]:
    """Odd and even jobs at two paces, so that at any moment some runs are at the model and
    others between their steps (one pace makes waves: all at the model, then none), and
    even jobs finish first (a run of two steps at step_ms / 2, odd ones at step_ms): when a
    burst's first results are in, the other half is still running, so a fault that waits
    for both ("a quarter done and runs in flight") always finds that moment."""
    return [
        Rule(match=Match(assistant_turns=0, last_user_regex=r"[02468]$"), reply=ASK, delay_ms=step_ms // 2),
        Rule(match=Match(assistant_turns=0), reply=ASK, delay_ms=step_ms),
        Rule(match=Match(has_tool_result="price", last_user_regex=r"[02468]$"), reply=ANSWER, delay_ms=step_ms // 2),
        Rule(match=Match(has_tool_result="price"), reply=ANSWER, delay_ms=step_ms),
    ]


def storm(step_ms: int) -> list[Rule]:
    """3 calls in 10 fail (a 429 or a 503, Retry-After 1 s), the rest answer."""
    bad = [
        FaultReply(fault=FaultKind.RATE_LIMIT, retry_after_s=1),
        FaultReply(fault=FaultKind.UNAVAILABLE, retry_after_s=1),
    ]

    def cycle(good: Any) -> SequenceReply:
        return SequenceReply(
            steps=[good, good, bad[0], good, good, bad[1], good, good, good, bad[0]], when_exhausted="cycle"
        )

    return [
        Rule(match=Match(assistant_turns=0), reply=cycle(ASK), delay_ms=step_ms),
        Rule(match=Match(has_tool_result="price"), reply=cycle(ANSWER), delay_ms=step_ms),
    ]


def down() -> list[Rule]:
    return [Rule(reply=FaultReply(fault=FaultKind.CONNECTION_RESET))]


@dataclass
class Row:
    scenario: str
    submitted: int = 0
    completed: int = 0
    lost: int = 0
    run_twice: int = 0
    repaid: int = 0
    reasked: int = 0
    in_flight: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def write_project(root: Path, cap: int, retry_delays: list[float] | None = None) -> Path:
    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "tools").mkdir(exist_ok=True)
    (root / "tools" / "shop.py").write_text(TOOL)
    agent = {
        "version": "1.0",
        "name": AGENT,
        "description": "LLM -> tool -> LLM under faults",
        "model": "openai/sim-model",
        "system_prompt": "Answer briefly.",
        "tools": ["shop.price"],
        "max_iterations": 3,
        "max_concurrent_runs": cap,
        "retry_options": {"attempts": 6, "initial_delay": 0.5, "max_delay": 5},
    }
    (root / "agents" / f"{AGENT}.yaml").write_text(yaml.safe_dump(agent))
    if retry_delays:
        config = {"durability": {"agents": {AGENT: {"retry_delays": retry_delays}}}}
        (root / "ferry.yaml").write_text(yaml.safe_dump(config))
    return root


class Workers:
    """`ferry worker` processes of one app id, started and stopped as a scenario needs."""

    def __init__(self, project: Path, bootstrap: str, prefix: str, base_url: str, log_dir: Path) -> None:
        self.project, self.bootstrap, self.prefix, self.base_url = project, bootstrap, prefix, base_url
        self.app_id = f"faults-{uuid.uuid4().hex[:8]}"
        self.log_dir = log_dir
        self.running: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        env = dict(os.environ, FERRY_LLM_BASE_URL=self.base_url, LITELLM_LOCAL_MODEL_COST_MAP="True")
        env["FERRY_HOME"] = tempfile.mkdtemp(prefix="ferry-faults-home-")
        log = (self.log_dir / f"worker-{len(list(self.log_dir.iterdir()))}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "worker", "--project", str(self.project), "--broker", self.bootstrap,
            "--app-id", self.app_id, "--topic-prefix", self.prefix, "--no-traces", "--no-metrics",
            "--no-history", "--no-webhooks", "--drain-seconds", "5",
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        seen: list[bytes] = []
        async with asyncio.timeout(120):
            while b"consuming" not in (line := await process.stderr.readline()):
                if not line:
                    tail = b"".join(seen[-3:]).decode(errors="replace").strip()
                    raise RuntimeError(f"a worker exited before it consumed: {tail}")
                seen.append(line)
                log.write(line)

        async def drain_log() -> None:
            assert process.stderr is not None
            while chunk := await process.stderr.read(65536):
                log.write(chunk)
            log.close()

        asyncio.get_running_loop().create_task(drain_log())
        self.running.append(process)
        return process

    async def kill(self, process: asyncio.subprocess.Process, sig: int = signal.SIGKILL) -> None:
        process.send_signal(sig)
        await asyncio.wait_for(process.wait(), 60)
        self.running.remove(process)

    async def stop_all(self) -> None:
        for process in list(self.running):
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await self.kill(process, signal.SIGTERM)


class ExecutionWatcher(ResultWatcher):
    """Also tells a run executed twice (two results, different start times) from one
    result written twice (a producer retry across the outage: the same record again)."""

    def __init__(self, bootstrap: str, names: TopicNames) -> None:
        super().__init__(bootstrap, names)
        self.started: dict[str, set[str]] = {}

    async def poll(self, timeout_ms: int = 200) -> None:
        before = dict(self.results)
        await super().poll(timeout_ms)
        for run_id, result in self.results.items():
            if before.get(run_id) is not result:
                self.started.setdefault(run_id, set()).add(result.started_at.isoformat())

    @property
    def executed_twice(self) -> int:
        return sum(1 for starts in self.started.values() if len(starts) > 1)


def _step_of(body: dict[str, Any]) -> tuple[str, int] | None:
    messages = body.get("messages", [])
    user = next((m.get("content") for m in messages if m.get("role") == "user"), None)
    job = re.search(r"job \d+", json.dumps(user))
    if job is None:
        return None
    return job.group(0), sum(1 for m in messages if m.get("role") == "assistant") + 1


def repeated_steps(sim: LLMSimulator, *, answered_only: bool) -> int:
    """Requests for a run's step beyond its first (answered ones only: what was paid twice)."""
    asked = Counter(_step_of(r.body) for r in sim.requests if r.outcome == "200" or not answered_only)
    return sum(count - 1 for step, count in asked.items() if step is not None and count > 1)


@contextlib.asynccontextmanager
async def scenario(
    name: str, bootstrap: str, rules: list[Rule], cap: int, retry_delays: list[float] | None = None
) -> AsyncIterator[tuple[Row, LLMSimulator, Workers, Path, TopicNames]]:
    row = Row(name)
    with tempfile.TemporaryDirectory(prefix=f"ferry-faults-{name}-") as tmp:
        root = write_project(Path(tmp) / "project", cap, retry_delays)
        (Path(tmp) / "logs").mkdir()
        names = TopicNames(f"faults-{uuid.uuid4().hex[:8]}.")
        async with LLMSimulator(rules, latency_ms=0, record_requests=True) as sim:
            workers = Workers(root, bootstrap, names.prefix, sim.base_url, Path(tmp) / "logs")
            t0 = time.monotonic()
            try:
                yield row, sim, workers, root, names
            finally:
                await workers.stop_all()
                row.seconds = time.monotonic() - t0
                row.repaid = repeated_steps(sim, answered_only=True)
                # The LLM scenarios' refused calls are the fault itself, not a re-asked step.
                healthy_llm = name not in ("llm-storm", "llm-down")
                row.reasked = repeated_steps(sim, answered_only=False) if healthy_llm else row.repaid
                if healthy_llm:  # requests whose answer never reached a worker: cut off by the fault
                    cut = sum(1 for r in sim.requests if r.outcome != "200")
                    row.notes.append(f"{cut} calls cut off (the simulator's in-flight count misses queued ones)")


async def submit_and_collect(
    row: Row,
    bootstrap: str,
    root: Path,
    names: TopicNames,
    runs: int,
    fault: Callable[[ResultWatcher], Awaitable[None]],
    timeout: float,
) -> None:
    """Submit `runs`, let `fault` break something mid-load, then wait for every result."""
    project = load_project(root)
    requests = [RunRequest.new(AGENT, {"message": f"price job {i}"}) for i in range(runs)]
    async with ExecutionWatcher(bootstrap, names) as watcher, Submitter(bootstrap, project, names) as submitter:
        for request in requests:
            await submitter.send(request)
        await submitter.flush()
        row.submitted = runs
        await fault(watcher)
        results = await watcher.wait_for([r.run_id for r in requests], timeout=timeout)
        await watcher.read_to_end()
    row.completed = sum(1 for r in results.values() if r.status == RunStatus.COMPLETED)
    row.lost = runs - len(results)
    row.run_twice = watcher.executed_twice
    if watcher.duplicates > row.run_twice:
        row.notes.append(f"{watcher.duplicates - row.run_twice} results written twice by one execution")
    failed = Counter(r.error.category.value for r in results.values() if r.error is not None)
    if failed:
        row.notes.append("not completed: " + ", ".join(f"{n} {c}" for c, n in failed.items()))


async def until(condition: Callable[[], bool], timeout: float, watcher: ResultWatcher | None = None) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            if watcher is not None:
                await watcher.poll(100)
            else:
                await asyncio.sleep(0.05)


async def worker_kill(bootstrap: str, runs: int, scale: float) -> Row:
    async with scenario("worker-kill", bootstrap, healthy(300), cap=120) as (row, sim, workers, root, names):
        first = await workers.start()

        async def fault(watcher: ResultWatcher) -> None:
            await until(
                lambda: len(watcher.results) >= runs // 10 and sim.in_flight >= min(30, runs // 8), 120, watcher
            )
            row.in_flight = sim.in_flight
            await workers.kill(first)
            row.notes.append(f"{len(watcher.results)} results before the kill")
            await workers.start()

        await submit_and_collect(row, bootstrap, root, names, runs, fault, timeout=600)
    return row


async def broker_kill(bootstrap: str, runs: int, scale: float) -> Row:
    from app.devstack.kafka import start_kafka, stop_kafka

    with tempfile.TemporaryDirectory(prefix="ferry-faults-broker-") as tmp:
        data, logs = Path(tmp) / "data", Path(tmp) / "logs"
        for attempt in range(3):  # the dev stack's random cluster id may start with "-", which its tool refuses
            try:
                info = await asyncio.to_thread(start_kafka, data / str(attempt), logs)
                data = data / str(attempt)
                break
            except Exception:
                if attempt == 2:
                    raise
        port = int(info.address.rsplit(":", 1)[1])
        try:
            async with scenario("broker-kill", info.address, healthy(300), cap=120) as (row, sim, workers, root, names):
                await workers.start()

                async def fault(watcher: ResultWatcher) -> None:
                    nonlocal info
                    await until(
                        lambda: len(watcher.results) >= runs // 4 and sim.in_flight >= min(10, runs // 12), 120, watcher
                    )
                    row.in_flight = sim.in_flight
                    os.kill(info.pid, signal.SIGKILL)
                    await asyncio.sleep(15 * scale)  # the outage itself
                    info = await asyncio.to_thread(start_kafka, data, logs, port=port)
                    row.notes.append(f"broker down {15 * scale:.0f} s")

                await submit_and_collect(row, info.address, root, names, runs, fault, timeout=600)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(stop_kafka, info)
    return row


async def llm_storm(bootstrap: str, runs: int, scale: float) -> Row:
    # A step refused 6 times running (0.3^6: about one in 1,400) is tried again later, not failed.
    retry = [5.0, 15.0, 30.0]
    async with scenario("llm-storm", bootstrap, storm(200), cap=60, retry_delays=retry) as parts:
        row, sim, workers, root, names = parts
        await workers.start()
        seconds = 60 * scale

        async def fault(watcher: ResultWatcher) -> None:
            await asyncio.sleep(seconds)  # the storm: every third call or so refused
            row.in_flight = sim.in_flight
            sim.set_rules(healthy(200))
            row.notes.append(f"storm {seconds:.0f} s, {sim.calls_total} calls during it")

        await submit_and_collect(row, bootstrap, root, names, runs, fault, timeout=600)
    return row


async def llm_down(bootstrap: str, runs: int, scale: float) -> Row:
    delays = [10 * scale, 20 * scale, 40 * scale]
    async with scenario("llm-down", bootstrap, healthy(200), cap=60, retry_delays=delays) as parts:
        row, sim, workers, root, names = parts
        await workers.start()
        seconds = 30 * scale

        async def fault(watcher: ResultWatcher) -> None:
            await until(lambda: len(watcher.results) >= runs // 5, 120, watcher)
            row.in_flight = sim.in_flight
            sim.set_rules(down())
            await asyncio.sleep(seconds)
            sim.set_rules(healthy(200))
            row.notes.append(f"LLM unreachable {seconds:.0f} s; retry delays {delays}")

        await submit_and_collect(row, bootstrap, root, names, runs, fault, timeout=900)
    return row


async def rebalance_storm(bootstrap: str, runs: int, scale: float) -> Row:
    async with scenario("rebalance-storm", bootstrap, healthy(300), cap=120) as (row, sim, workers, root, names):
        for _ in range(3):
            await workers.start()
        rng = random.Random(7)

        async def fault(watcher: ResultWatcher) -> None:
            end = time.monotonic() + 40 * scale
            changes = 0
            while time.monotonic() < end and len(watcher.results) < runs:
                await asyncio.sleep(4)
                leaving = rng.choice(workers.running)
                row.in_flight = max(row.in_flight, sim.in_flight)
                await asyncio.gather(workers.kill(leaving, signal.SIGTERM), workers.start())
                changes += 1
            row.notes.append(f"{changes} leave+join changes")

        await submit_and_collect(row, bootstrap, root, names, runs, fault, timeout=900)
    return row


SCENARIOS: dict[str, Callable[[str, int, float], Awaitable[Row]]] = {
    "worker-kill": worker_kill,
    "broker-kill": broker_kill,
    "llm-storm": llm_storm,
    "llm-down": llm_down,
    "rebalance-storm": rebalance_storm,
}


async def main(args: argparse.Namespace) -> None:
    bootstrap = (args.broker or os.environ.get("FERRY_BROKER", "")).removeprefix("kafka://")
    if not bootstrap:
        raise SystemExit("set FERRY_BROKER or --broker")
    scale = 0.25 if args.short else 1.0
    runs = int(args.runs * scale)
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    print(
        "| scenario | submitted | completed | lost | run twice | LLM steps re-paid | re-asked "
        "| in flight at the fault | s | notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in chosen:
        try:
            row = await SCENARIOS[name](bootstrap, runs, scale)
        except Exception as exc:  # a failed scenario is a row saying why, the others still run
            row = Row(name, notes=[f"scenario failed: {type(exc).__name__}: {exc}"])
        print(
            f"| {row.scenario} | {row.submitted} | {row.completed} | {row.lost} | {row.run_twice} | {row.repaid} "
            f"| {row.reasked} | {row.in_flight} | {row.seconds:.0f} | {'; '.join(row.notes)} |",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=None)
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--only", default=None, help="comma-separated scenarios (default: all)")
    parser.add_argument("--short", action="store_true", help="a quarter of the runs and durations")
    asyncio.run(main(parser.parse_args()))
