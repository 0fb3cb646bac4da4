"""`ferry dev`: a saved prompt is in force within 2 s and the next run uses it; a broken save
is reported with its file and line and changes nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from app.contracts import RunRequest
from app.deploy.dev_loop import DevLoop, agents_to_test
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, child_env, llm_agent, write_project

ROOT = Path(__file__).resolve().parents[3]


def _system_prompts(sim: LLMSimulator) -> list[str]:
    found = []
    for request in sim.requests:
        messages = request.body.get("messages", []) if isinstance(request.body, dict) else []
        found += [str(m.get("content")) for m in messages if m.get("role") == "system"]
    return found


async def test_a_saved_prompt_is_in_force_within_2_s_and_the_next_run_uses_it(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(system_prompt="You are the first draft.")})
    said: list[str] = []
    async with LLMSimulator([], latency_ms=0) as sim:
        worker = make_worker(project, sim.base_url)

        async def in_force(version: str) -> None:
            assert worker.versions is not None
            await asyncio.wait_for(worker.versions.in_force(version), 30)

        dev = DevLoop(tmp_path, kafka_bootstrap, names, say=said.append, in_force=in_force)
        first = await dev.publish()
        assert first is not None
        await worker.start()
        await in_force(first)
        stop = asyncio.Event()
        watching = asyncio.create_task(dev.watch(stop))
        try:
            agent = tmp_path / "agents" / "echo.yaml"
            agent.write_text(agent.read_text().replace("the first draft", "the second draft"))
            await wait_for(lambda: len(dev.reloads) == 1, 30, what="the reload")
            reload = dev.reloads[0]
            assert reload.version is not None and reload.version != first
            assert reload.changed == ["agents/echo.yaml"]
            assert reload.published_at is not None
            took = reload.published_at - reload.saved_at
            assert took < 2.0, took

            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                request = RunRequest.new("echo", {"message": "which draft?"})
                await submitter.submit(request)
                result = (await watcher.wait_for([request.run_id], timeout=30))[request.run_id]
            assert result.deployment == reload.version
            assert "You are the second draft." in _system_prompts(sim)[-1]

            agent.write_text("version: '1.0'\nname: echo\nmodel: [unclosed\n")  # a broken save
            await wait_for(lambda: len(dev.reloads) == 2, 30, what="the broken save seen")
            assert dev.reloads[1].version is None and dev.version == reload.version
            assert any(line.startswith("agents/echo.yaml:4:1: invalid YAML") for line in said), said  # file and line
            assert worker.versions is not None and worker.versions.state.active == reload.version
        finally:
            stop.set()
            await watching


def test_the_tests_rerun_are_those_of_the_agents_whose_files_changed() -> None:
    agents = ["echo", "other"]
    assert agents_to_test(["agents/echo.yaml"], agents) == ["echo"]
    assert agents_to_test(["tests/other.yaml", "agents/echo.yaml"], agents) == ["echo", "other"]
    assert agents_to_test(["tests/cassettes/other/case.json"], agents) == ["other"]
    assert agents_to_test(["tools/shared.py"], agents) is None  # a shared file: every agent


async def test_ferry_dev_reloads_on_save_and_stops_on_ctrl_c(tmp_path: Path, kafka_bootstrap: str, prefix: str) -> None:
    write_project(tmp_path, {"echo": llm_agent(system_prompt="Draft one.")})
    args = ["--project", str(tmp_path), "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--no-history"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "dev", *args, "--no-tests",
        cwd=ROOT, env=child_env(), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []

    async def line_with(text: str) -> str:
        try:
            async with asyncio.timeout(120):
                while True:
                    raw = await process.stderr.readline()  # type: ignore[union-attr]
                    assert raw, "\n".join(lines)
                    lines.append(raw.decode().rstrip())
                    if text in lines[-1]:
                        return lines[-1]
        except TimeoutError:
            raise AssertionError(f"no line with {text!r} in: {lines}") from None

    try:
        await line_with("watching for saves")
        agent = tmp_path / "agents" / "echo.yaml"
        saved = time.time()
        agent.write_text(agent.read_text().replace("Draft one.", "Draft two."))
        reloaded = await line_with("ferry dev: reloaded v")
        assert " in " in reloaded and reloaded.endswith(" ms") and time.time() - saved < 30
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()
    assert not any("Traceback" in line for line in lines), lines
