"""Rollback time: from `ferry rollback` returning until every worker serves new runs on the old version.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_rollback.py [--workers 3] [--rounds 5] [--rate 30]

Three `ferry worker` processes (history off, the rest default) run one agent against the
LLM simulator (its own process, `--latency` ms per call) under a steady paced load of
`--rate` runs/s. v1 and v2 of the project are published to `ferry.deployments`; each
round makes v2 active, waits until new runs report v2, then runs the real
`ferry rollback` command and measures, from the moment it returned:
  - *last v2 start*: the latest `started_at` of any run on v2 (after it, every new run of
    every worker is v1): the number the < 5 s target is about;
    negative when the workers were all on v1 before the command had even exited;
  - *workers on v1*: from the moment the command wrote the active state (its `updated_at`)
    until the slowest worker's log said it had put v1 in force (stderr read as it came);
  - the command's own wall time (a Python process: imports, connect, read, write, exit).
Runs are counted at the end: every submitted run must have exactly one result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_peers import stop_process  # noqa: E402
from bench_streams import AGENT, write_project  # noqa: E402

from app.contracts import RunRequest  # noqa: E402
from app.deploy.log import DeploymentLog  # noqa: E402
from app.deploy.records import Deployment  # noqa: E402
from app.deploy.snapshot import snapshot_directory, version_of  # noqa: E402
from app.devstack.llm_sim import start_simulator_process  # noqa: E402
from app.streams import ResultWatcher, Submitter, TopicNames, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402


class WorkerLog:
    """A worker's stderr, read as it comes: when it started consuming, when it switched."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.consuming = asyncio.Event()
        self.switches: list[tuple[datetime, str]] = []  # (when read, the line)
        self.tail: list[str] = []
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.tail = [*self.tail[-20:], text]
            if "consuming" in text:
                self.consuming.set()
            if "deployments:" in text and " active" in text:
                self.switches.append((datetime.now(UTC), text))


async def until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll a condition the follow task makes true (results arrive in another task)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110  # no event to wait on: results are read elsewhere
            await asyncio.sleep(0.05)


async def publish(bootstrap: str, names: TopicNames, root: Path) -> str:
    files = snapshot_directory(root)
    deployment = Deployment.of(version_of(files), files, message=root.name)
    async with DeploymentLog(bootstrap, names) as log:
        await log.publish(deployment)
    return deployment.version


async def activate(bootstrap: str, names: TopicNames, version: str) -> None:
    async with DeploymentLog(bootstrap, names) as log:
        book = await log.read()
        await log.set_state(book.state.activate(version, reason="bench"))


async def main(args: argparse.Namespace) -> None:
    prefix = f"rb-{uuid.uuid4().hex[:6]}."
    names = TopicNames(prefix)
    home = Path(tempfile.mkdtemp(prefix="ferry-rollback-"))
    v1_dir, v2_dir = home / "v1", home / "v2"
    project = write_project(v1_dir, args.cap)
    write_project(v2_dir, args.cap)
    agent_file = v2_dir / "agents" / f"{AGENT}.yaml"
    agent_file.write_text(agent_file.read_text().replace("Answer briefly.", "Answer briefly, version two."))
    await apply_topics(args.broker, plan_topics(project, names))
    v1 = await publish(args.broker, names, v1_dir)
    v2 = await publish(args.broker, names, v2_dir)
    await activate(args.broker, names, v1)
    sim = start_simulator_process([], latency_ms=args.latency, extra_args=["--no-record"])
    env = dict(os.environ, FERRY_LLM_BASE_URL=sim.base_url, FERRY_HOME=str(home / "home"))
    common = ["--broker", args.broker, "--topic-prefix", prefix]
    logs: list[WorkerLog] = []
    for _ in range(args.workers):
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "app", "worker", "--project", str(v1_dir), "--app-id", f"{prefix}ferry", *common],
            *["--no-history", "--no-metrics"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        logs.append(WorkerLog(process))
    submitted: list[str] = []
    rounds: list[tuple[float, float]] = []
    try:
        for log in logs:
            await asyncio.wait_for(log.consuming.wait(), 120)
        async with ResultWatcher(args.broker, names) as watcher, Submitter(args.broker, project, names) as sub:

            async def load() -> None:
                loop = asyncio.get_running_loop()
                due = loop.time()
                while True:
                    request = RunRequest.new(AGENT, {"message": f"r{len(submitted)}"})
                    await sub.send(request)
                    submitted.append(request.run_id)
                    due += 1.0 / args.rate
                    await asyncio.sleep(max(0.0, due - loop.time()))

            async def follow() -> None:
                while True:
                    await watcher.poll(timeout_ms=100)

            loader = asyncio.create_task(load())
            reader = asyncio.create_task(follow())

            await until(lambda: len(watcher.results) >= 3 * args.rate, 120)
            for number in range(args.rounds):
                switched_to_v2 = datetime.now(UTC)
                await activate(args.broker, names, v2)
                await until(
                    lambda since=switched_to_v2: (  # type: ignore[misc]
                        sum(r.deployment == v2 and r.started_at > since for r in watcher.results.values())
                        >= 2 * args.rate
                    ),
                    60,
                )
                marks = [len(log.switches) for log in logs]
                started = datetime.now(UTC)
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "app", "rollback", *common,
                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )  # fmt: skip
                out, err = await process.communicate()
                returned = datetime.now(UTC)
                if process.returncode != 0 or out.decode().strip() != v1:
                    raise RuntimeError(f"ferry rollback failed: {err.decode()}")
                await until(lambda marks=marks: all(len(g.switches) > m for g, m in zip(logs, marks, strict=True)), 30)  # type: ignore[misc]
                await asyncio.sleep(6)  # then look back: runs started since the return, on which version
                async with DeploymentLog(args.broker, names) as deployments:
                    written = (await deployments.read()).state.updated_at  # when `ferry rollback` wrote it
                v2_starts = [r.started_at for r in watcher.results.values() if r.deployment == v2]
                last_v2 = (max(v2_starts) - returned).total_seconds()
                switched_at = max(log.switches[mark][0] for log, mark in zip(logs, marks, strict=True))
                workers = (switched_at - written).total_seconds()
                command = (returned - started).total_seconds()
                after = [r for r in watcher.results.values() if r.started_at > returned]
                late = [r for r in after if r.deployment == v2 and (r.started_at - returned).total_seconds() > 5]
                rounds.append((last_v2, workers, command))
                print(
                    f"round {number + 1}: last v2 start {last_v2 * 1000:+.0f} ms from `ferry rollback` returning "
                    f"(the command took {command * 1000:.0f} ms); all {len(logs)} workers on v1 "
                    f"{workers * 1000:.0f} ms after it wrote the record; "
                    f"{len(after)} runs started since the return, {len(late)} on v2 later than 5 s",
                    flush=True,
                )
            loader.cancel()
            await sub.flush()
            await until(lambda: all(rid in watcher.results for rid in submitted), 120)
            reader.cancel()
            lost = len(submitted) - sum(rid in watcher.results for rid in submitted)
            print(f"runs: {len(submitted)} submitted, {lost} without a result, {watcher.duplicates} duplicates")
    finally:
        for log in logs:
            await stop_process(log.process)
        sim.stop()
    last, switched, command = ([r[i] * 1000 for r in rounds] for i in range(3))
    print(
        f"\n{args.workers} workers, {args.rate:g}/s, simulator {args.latency} ms, cap {args.cap}, {len(rounds)} rounds:\n"
        f"  last v2 start, from `ferry rollback` returning:  p50 {statistics.median(last):+.0f} ms, max {max(last):+.0f} ms\n"
        f"  every worker on v1, from the record written:    p50 {statistics.median(switched):.0f} ms, "
        f"max {max(switched):.0f} ms\n"
        f"  `ferry rollback` itself (start to exit):         p50 {statistics.median(command):.0f} ms, "
        f"max {max(command):.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER", "127.0.0.1:9092"))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=30.0, help="runs submitted per second")
    parser.add_argument("--latency", type=int, default=200, help="simulator ms per LLM call")
    parser.add_argument("--cap", type=int, default=12)
    asyncio.run(main(parser.parse_args()))
