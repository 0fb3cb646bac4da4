"""`ferry submit --wait` and `ferry topics apply` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from app.devstack.llm_sim import LLMSimulator
from app.streams import TopicNames
from tests.integration.streams.conftest import WorkerFactory, child_env, llm_agent, write_project

ROOT = Path(__file__).resolve().parents[3]


async def _ferry(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_submit_waits_for_the_result_and_prints_it(
    tmp_path, kafka_bootstrap: str, simulator: LLMSimulator, make_worker: WorkerFactory, prefix: str
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()})
    await make_worker(project, simulator.base_url).start()
    common = ("--project", str(tmp_path), "--broker", kafka_bootstrap, "--topic-prefix", prefix)

    code, out, err = await _ferry(
        "submit", "echo", "--input", '{"message": "from the CLI"}', "--wait", "--tenant", "cli-tenant", *common
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "completed" and result["tenant"] == "cli-tenant"
    assert result["output"] == "Simulated reply to: from the CLI"

    code, out, err = await _ferry("submit", "no-such-agent", "--input", "{}", *common)
    assert code == 1 and "no agent 'no-such-agent'" in err


async def test_topics_apply_reports_a_conflict_with_exit_code_1(tmp_path, kafka_bootstrap: str, prefix: str) -> None:
    write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=3)})
    common = ("--project", str(tmp_path), "--broker", kafka_bootstrap, "--topic-prefix", prefix)
    code, out, _ = await _ferry("topics", "apply", *common)
    assert code == 0 and f"created   {TopicNames(prefix).request('echo')}" in out

    tight = tmp_path / "tight"
    write_project(tight, {"echo": llm_agent(max_concurrent_runs=1)})  # the topic now has more partitions than shares
    code, _, err = await _ferry(
        "topics", "apply", "--project", str(tight), "--broker", kafka_bootstrap, "--topic-prefix", prefix
    )
    assert code == 1 and "CONFLICT" in err and "max_concurrent_runs" in err
