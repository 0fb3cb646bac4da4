"""`ferry dev` reload time: from a prompt saved to the worker running the new version.

    FERRY_BROKER=host:port .venv/bin/python bench/bench_dev_reload.py [--saves 10] [--every 1.5]

Starts the LLM simulator and `ferry dev --no-history` on a one-agent project (with one test
case, so the changed agent's tests rerun after each reload, as in real use), then saves a
new system prompt `--saves` times, `--every` seconds apart. The number is what `ferry dev`
prints for each reload: the file's modification time to the moment its worker put the new
version in force (lint, snapshot, publish to ferry.deployments, the worker loading it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.devstack.llm_sim import start_simulator_process  # noqa: E402

RELOADED = re.compile(r"reloaded (v\w+) .* in (\d+) ms")


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="ferry-dev-reload-"))
    (root / "agents").mkdir()
    (root / "tests").mkdir()
    agent = {"version": "1.0", "name": "echo", "description": "d", "model": "openai/sim-model", "system_prompt": "0"}
    (root / "agents" / "echo.yaml").write_text(yaml.safe_dump(agent))
    case = {"name": "answers", "payload": '{"message": "hi"}', "expected_result": 'status == "completed"'}
    (root / "tests" / "echo.yaml").write_text(yaml.safe_dump({"version": "1.0", "tests": [case]}))
    sim = start_simulator_process([], latency_ms=0, extra_args=["--no-record"])
    env = dict(os.environ, FERRY_LLM_BASE_URL=sim.base_url, FERRY_HOME=str(root / "home"))
    prefix = f"devbench-{uuid.uuid4().hex[:6]}."
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "dev", "--project", str(root), "--broker", args.broker,
        "--topic-prefix", prefix, "--no-history",
        cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    times: list[int] = []
    try:
        while b"watching for saves" not in await process.stderr.readline():
            pass
        for number in range(1, args.saves + 1):
            agent["system_prompt"] = f"You are draft {number}."
            (root / "agents" / "echo.yaml").write_text(yaml.safe_dump(agent))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
                match = RELOADED.search(line)
                if match:
                    times.append(int(match.group(2)))
                    print(line.strip(), flush=True)
                    break
            await asyncio.sleep(args.every)
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
        sim.stop()
    print(
        f"\n{len(times)} saves: save → in force p50 {statistics.median(times):.0f} ms, "
        f"max {max(times)} ms (target < 2000 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default=os.environ.get("FERRY_BROKER", "127.0.0.1:9092"))
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--every", type=float, default=1.5, help="seconds between saves")
    asyncio.run(main(parser.parse_args()))
