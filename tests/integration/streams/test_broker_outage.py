"""A worker whose broker is gone: a few log lines rather than thousands, and SIGTERM still stops it.

The broker here is a private one (the dev stack's own start), killed with SIGKILL mid-run;
the shared session broker is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.contracts import RunRequest
from app.devstack.kafka import start_kafka, stop_kafka
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply
from app.devstack.service import ServiceInfo
from app.streams import Submitter, TopicNames
from tests.integration.streams.conftest import child_env, llm_agent, write_project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DRAIN_SECONDS = 3.0
OUTAGE_WINDOW_S = 10.0


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[ServiceInfo]:
    info = await asyncio.to_thread(start_kafka, tmp_path / "kafka-data", tmp_path / "kafka-logs")
    try:
        yield info
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(stop_kafka, info)


class Lines:
    """A child's stderr, read line by line as it comes (so the pipe never fills)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[tuple[float, str]] = []
        self._task = asyncio.get_running_loop().create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append((time.monotonic(), line.decode(errors="replace").rstrip()))

    async def wait_for(self, text: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not any(text in line for _, line in self.lines):
                if self._task.done():
                    raise AssertionError(f"the worker exited before it logged {text!r}: {self.lines[-20:]}")
                await asyncio.sleep(0.05)

    def since(self, moment: float) -> list[str]:
        return [line for at, line in self.lines if at >= moment]


async def test_a_worker_without_its_broker_logs_little_and_stops_on_sigterm(
    tmp_path: Path, private_broker: ServiceInfo
) -> None:
    bootstrap = private_broker.address
    project = write_project(tmp_path / "project", {"slow": llm_agent(max_concurrent_runs=4)})
    names = TopicNames("outage.")
    hold = Rule(match=Match(last_user_contains="hold"), reply=TextReply(text="late"), delay_ms=60_000)
    async with LLMSimulator([hold], latency_ms=0, record_requests=False) as sim:
        env = child_env() | {"FERRY_LLM_BASE_URL": sim.base_url}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "worker",
            "--project",
            str(tmp_path / "project"),
            "--broker",
            bootstrap,
            "--topic-prefix",
            "outage.",
            "--drain-seconds",
            str(DRAIN_SECONDS),
            "--no-traces",
            "--no-metrics",
            "--no-history",
            "--no-webhooks",
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            lines = Lines(process.stderr)
            await lines.wait_for("consuming", 90)
            async with Submitter(bootstrap, project, names) as submitter:
                for i in range(3):
                    await submitter.submit(RunRequest.new("slow", {"message": f"hold {i}"}))
            async with asyncio.timeout(60):
                while sim.in_flight < 3:  # runs in flight when the broker dies
                    assert process.returncode is None, lines.since(0)
                    await asyncio.sleep(0.05)
            os.kill(private_broker.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            await lines.wait_for("Kafka broker unreachable", 60)
            # A window, not a wait: the clients retry every 100 ms, ~3,000 lines in 15 s unfolded.
            await asyncio.sleep(OUTAGE_WINDOW_S)
            outage_lines = lines.since(killed_at)
            terminated_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), DRAIN_SECONDS + 30)
            took = time.monotonic() - terminated_at
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    assert took <= DRAIN_SECONDS + 5, f"SIGTERM took {took:.1f}s with the broker gone"
    assert code == 0
    # One line per cause per interval (30 s), not one per retry: a handful of causes.
    assert len(outage_lines) <= 15, "\n".join(outage_lines)
