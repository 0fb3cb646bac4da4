"""Scale figures of `ferry worker` (issue 14, point 5): runs in flight, RSS, and 1 → N workers.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_scale.py [rest] [inflight] [workers]

Every worker is `ferry worker` with its defaults (traces, history, metrics, webhooks, commit
after result) on a one-agent project (`openai/sim-model`, the direct OpenAI-protocol path via
FERRY_LLM_BASE_URL) against the LLM simulator in its own process. Each part prints its table:
  - rest:     RSS (VmRSS) of an idle worker 10 s after it says "consuming", and again after
              20 runs and 10 s idle; whether it imported litellm (`python -X importtime`'s
              lines, so the worker measured is the one checked);
  - inflight: `--inflight-runs` runs sent at once to one worker with cap and read-ahead of
              that many, the simulator answering after `--inflight-latency-ms` (30 s): the
              peak of the worker's own `ferry_runs_in_flight` gauge (its /metrics), of the
              calls open at the simulator, the worker's RSS at that peak and its VmHWM, and
              how the runs ended;
  - workers:  1..`--max-workers` worker processes in one group (same app id and topics),
              `--burst` one-call runs sent at once (simulator `--burst-latency-ms`, cap
              `--cap` each), once every worker holds partitions: runs/s first send → last
              result, the workers' CPU per run and share of a core, the share of the burst each
              worker's main thread spent runnable but waiting for a CPU (schedstat), the cores
              the simulator, this driver and the broker used, and the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_peers import cpu_seconds, http_get, peak_rss_mb, sim_stats  # noqa: E402
from bench_streams import AGENT, write_project  # noqa: E402

from app.contracts import RunRequest  # noqa: E402
from app.devstack.llm_sim import start_simulator_process  # noqa: E402
from app.streams import ResultWatcher, Submitter, TopicNames, apply_topics  # noqa: E402
from app.streams.topic_plan import plan_topics  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    metrics_port: int
    imports: list[bytes] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def in_flight(self) -> int | None:
        """The worker's `ferry_runs_in_flight` for the agent, read as Prometheus scrapes it."""
        body = await http_get("127.0.0.1", self.metrics_port, "/metrics")
        found = re.search(rb'^ferry_runs_in_flight\{agent="' + AGENT.encode() + rb'"\} ([0-9.e+]+)', body, re.M)
        return int(float(found.group(1))) if found else None

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_worker(
    project_dir: Path, bootstrap: str, prefix: str, base_url: str, *, read_ahead: int, home: Path, importtime: bool
) -> WorkerProcess:
    env = dict(os.environ, FERRY_LLM_BASE_URL=base_url, FERRY_HOME=str(home))
    port = free_port()
    python = [sys.executable, "-X", "importtime"] if importtime else [sys.executable]
    process = await asyncio.create_subprocess_exec(
        *python, "-m", "app", "worker", "--project", str(project_dir), "--broker", bootstrap,
        "--app-id", f"{prefix}ferry", "--topic-prefix", prefix, "--read-ahead", str(read_ahead),
        "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    worker = WorkerProcess(process, port)
    assert process.stderr is not None
    stderr = process.stderr
    tail: list[bytes] = []
    while b"consuming" not in (line := await stderr.readline()):
        if not line:
            raise RuntimeError(f"worker exited before consuming: {b''.join(tail[-5:]).decode(errors='replace')}")
        if line.startswith(b"import time:"):
            worker.imports.append(line)
        else:
            tail.append(line)

    async def drain() -> None:
        while await stderr.read(65536):
            pass

    asyncio.get_running_loop().create_task(drain())
    return worker


async def sim_in_flight(base_url: str) -> int:
    return int((await sim_stats(base_url)).get("in_flight", -1))


class Scenario:
    """A project, its topics and a simulator; workers started on it are stopped on exit."""

    def __init__(self, args: argparse.Namespace, *, cap: int, latency_ms: int, tag: str) -> None:
        self.args, self.cap, self.latency_ms = args, cap, latency_ms
        self.prefix = f"scale-{uuid.uuid4().hex[:6]}-{tag}."
        self.names = TopicNames(self.prefix)
        self.dir = Path(tempfile.mkdtemp(prefix="ferry-scale-"))
        self.project = write_project(self.dir, cap)
        self.workers: list[WorkerProcess] = []

    async def __aenter__(self) -> Scenario:
        await apply_topics(self.args.broker, plan_topics(self.project, self.names))
        self.sim = start_simulator_process([], latency_ms=self.latency_ms, extra_args=["--no-record"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))
        self.sim.stop()

    async def worker(self, *, read_ahead: int = 2000, importtime: bool = False) -> WorkerProcess:
        home = self.dir / f"home-{len(self.workers)}"
        worker = await start_worker(
            self.dir, self.args.broker, self.prefix, self.sim.base_url,
            read_ahead=read_ahead, home=home, importtime=importtime,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    async def send(self, sub: Submitter, watcher: ResultWatcher, count: int, timeout: float) -> asyncio.Task[Any]:
        """Sends `count` runs at once; the task returns once their results are in (or timeout)."""
        requests = [RunRequest.new(AGENT, {"message": f"run {i}"}) for i in range(count)]
        reader = asyncio.create_task(watcher.wait_for([r.run_id for r in requests], timeout=timeout))
        for request in requests:
            await sub.send(request)
        await sub.flush()
        return reader


# -- rest ---------------------------------------------------------------------------------------------
async def at_rest(args: argparse.Namespace) -> None:
    async with Scenario(args, cap=64, latency_ms=0, tag="rest") as scenario:
        worker = await scenario.worker(importtime=True)
        await asyncio.sleep(10)
        started = rss_mb(worker.pid)
        async with (
            ResultWatcher(args.broker, scenario.names) as watcher,
            Submitter(args.broker, scenario.project, scenario.names) as sub,
        ):
            got = await (await scenario.send(sub, watcher, 20, 120))
        await asyncio.sleep(10)
        after_runs = rss_mb(worker.pid)
        litellm = [line for line in worker.imports if re.search(rb"\|\s+litellm$", line.rstrip())]
        print(
            f"\nrest: idle worker RSS {started:.1f} MiB 10 s after start, {after_runs:.1f} MiB after "
            f"{len(got)}/20 runs and 10 s idle (VmHWM {peak_rss_mb(worker.pid):.1f} MiB); litellm imported: "
            f"{'yes' if litellm else 'no'} ({len(worker.imports)} modules imported); target ≤ 100 MiB",
            flush=True,
        )


# -- inflight -----------------------------------------------------------------------------------------
async def in_flight(args: argparse.Namespace) -> None:
    runs = args.inflight_runs
    async with Scenario(args, cap=runs, latency_ms=args.inflight_latency_ms, tag="inflight") as scenario:
        worker = await scenario.worker(read_ahead=runs)
        await asyncio.sleep(5)
        rest = rss_mb(worker.pid)
        async with (
            ResultWatcher(args.broker, scenario.names) as watcher,
            Submitter(args.broker, scenario.project, scenario.names) as sub,
        ):
            t0 = time.monotonic()
            reader = await scenario.send(sub, watcher, runs, args.inflight_timeout)
            sent_s = time.monotonic() - t0
            peak: dict[str, Any] = {"worker": 0, "sim": 0, "rss": rest, "at": 0.0}
            while not reader.done():
                await asyncio.wait([reader], timeout=1.0)
                flying, calls = await worker.in_flight(), await sim_in_flight(scenario.sim.base_url)
                rss = rss_mb(worker.pid)
                if (flying or 0) > peak["worker"]:
                    peak.update(worker=flying, at=time.monotonic() - t0)
                peak["sim"] = max(peak["sim"], calls)
                peak["rss"] = max(peak["rss"], rss)
                print(
                    f"  {time.monotonic() - t0:6.1f} s in flight {flying} calls {calls} RSS {rss:.0f} MiB", flush=True
                )
            got = reader.result()
            elapsed = time.monotonic() - t0
        statuses = Counter(r.status.value for r in got.values())
        print(
            f"\ninflight: {runs} runs sent in {sent_s:.1f} s, simulator {args.inflight_latency_ms} ms, cap {runs}, "
            f"read-ahead {runs}\n  worker's runs in flight, peak: {peak['worker']} (at {peak['at']:.0f} s); "
            f"calls open at the simulator, peak: {peak['sim']}\n  worker RSS: {rest:.1f} MiB before, "
            f"{peak['rss']:.1f} MiB peak sampled, VmHWM {peak_rss_mb(worker.pid):.1f} MiB (target < 1 GiB)\n"
            f"  results: {len(got)}/{runs} in {elapsed:.0f} s, {dict(statuses)}",
            flush=True,
        )


# -- workers ------------------------------------------------------------------------------------------
def run_delay_s(pid: int) -> float:
    """Time the process's main thread spent runnable but waiting for a CPU (schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def child_pid(marker: str) -> int | None:
    """A child of this process whose command line holds `marker` (the simulator)."""
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and marker in (status.parent / "cmdline").read_text():
                return int(status.parent.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


def broker_pid(args: argparse.Namespace) -> int | None:
    """The process listening on the broker's port, when `ss` can tell (its CPU share is shown)."""
    port = args.broker.rsplit(":", 1)[-1]
    try:
        listing = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"pid=(\d+)", listing.stdout)
    return int(found.group(1)) if found else None


async def group_settled(bootstrap: str, group: str, members: int, timeout: float = 120.0) -> None:
    """The group is Stable with `members` members, each holding partitions, for 3 s running."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline, since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            described = (await admin.describe_consumer_groups([group]))[0].groups[0]
            state, held = described[2], described[5]  # error, id, state, protocol type, protocol, members
            shares = [
                sum(len(p) for _, p in ConsumerProtocolMemberAssignment.decode(m[-1]).assignment) if m[-1] else 0
                for m in held
            ]
            if state == "Stable" and len(shares) == members and all(shares):
                since = since or time.monotonic()
                if time.monotonic() - since >= 3:
                    return
            else:
                since = None
            await asyncio.sleep(0.5)
        raise RuntimeError(f"group {group}: not {members} members holding partitions within {timeout:.0f} s")
    finally:
        await admin.close()


async def scale_out(args: argparse.Namespace) -> None:
    rows: list[str] = []
    for count in range(1, args.max_workers + 1):
        async with Scenario(args, cap=args.cap, latency_ms=args.burst_latency_ms, tag=f"w{count}") as scenario:
            workers = [await scenario.worker() for _ in range(count)]
            async with (
                ResultWatcher(args.broker, scenario.names) as watcher,
                Submitter(args.broker, scenario.project, scenario.names) as sub,
            ):
                await group_settled(args.broker, f"{scenario.prefix}ferry", count)
                await (await scenario.send(sub, watcher, 20 * count, 120))  # warm-up
                load0 = os.getloadavg()[0]
                others = {"sim": child_pid("app.devstack.llm_sim"), "driver": os.getpid(), "broker": broker_pid(args)}
                others0 = {k: cpu_seconds(pid) for k, pid in others.items() if pid}
                cpu0 = [cpu_seconds(w.pid) for w in workers]
                waited0 = [run_delay_s(w.pid) for w in workers]
                t0 = asyncio.get_running_loop().time()
                reader = await scenario.send(sub, watcher, args.burst, args.timeout)
                got = await reader
                elapsed = max(watcher.arrivals[r] for r in got) - t0
                cpu = [cpu_seconds(w.pid) - c for w, c in zip(workers, cpu0, strict=True)]
                waited = [run_delay_s(w.pid) - d for w, d in zip(workers, waited0, strict=True)]
                used = {k: (cpu_seconds(others[k]) - c) / elapsed for k, c in others0.items()}
                load1 = os.getloadavg()[0]
        share = [round(c / elapsed, 2) for c in cpu]
        queued = [round(d / elapsed, 2) for d in waited]
        rest = " ".join(f"{used.get(k, float('nan')):.2f}" for k in ("sim", "driver", "broker"))
        rows.append(
            f"{count:>7} {len(got):>6} {len(got) / elapsed:>8.1f} {sum(cpu) * 1000 / max(1, len(got)):>11.2f} "
            f"{share!s:>22} {queued!s:>22} {rest:>20} {load0:>5.1f}/{load1:<5.1f}"
        )
        print(rows[-1], flush=True)
    print(
        f"\nworkers: {args.burst} one-call runs at once, simulator {args.burst_latency_ms} ms, cap {args.cap} per worker"
    )
    print(
        f"{'workers':>7} {'runs':>6} {'runs/s':>8} {'CPU ms/run':>11} {'cores used per worker':>22} "
        f"{'main thread runnable':>22} "
        f"{'sim/driver/broker':>20} load before/after"
    )
    for line in rows:
        print(line)


async def main(args: argparse.Namespace) -> None:
    print(f"start {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {os.getloadavg()}", flush=True)
    for part in args.parts:
        await {"rest": at_rest, "inflight": in_flight, "workers": scale_out}[part](args)
    print(f"end {time.strftime('%H:%M:%S', time.gmtime())} UTC, load {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", choices=["rest", "inflight", "workers"], default=None)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER", "").removeprefix("kafka://") or None)
    parser.add_argument("--inflight-runs", type=int, default=10_000)
    parser.add_argument("--inflight-latency-ms", type=int, default=30_000)
    parser.add_argument("--inflight-timeout", type=float, default=900.0)
    parser.add_argument("--max-workers", type=int, default=3)
    parser.add_argument("--burst", type=int, default=1500)
    parser.add_argument("--burst-latency-ms", type=int, default=200)
    parser.add_argument("--cap", type=int, default=64, help="runs in flight per worker (workers part)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parsed = parser.parse_args()
    parsed.parts = parsed.parts or ["rest", "inflight", "workers"]
    if parsed.broker is None:
        sys.exit("no broker: set FERRY_BROKER or run `ferry dev up`")
    asyncio.run(main(parsed))
