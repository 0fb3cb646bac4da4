"""Deployments on a real broker: workers switch versions between runs, roll back in seconds,
honour pins and canaries, and `ferry deploy`'s gate keeps a failing version out."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from app.contracts import RunRequest, RunResult, RunStatus
from app.deploy.canary import choose_version
from app.deploy.log import DeploymentLog
from app.deploy.records import Deployment
from app.deploy.snapshot import snapshot_directory, version_of
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, child_env, llm_agent, write_project

ROOT = Path(__file__).resolve().parents[3]


def version_dir(root: Path, prompt: str, **keys: Any) -> Path:
    write_project(root, {"echo": llm_agent(system_prompt=prompt, **keys)})
    return root


async def publish(bootstrap: str, names: TopicNames, root: Path, *, activate: bool = True) -> str:
    files = snapshot_directory(root)
    deployment = Deployment.of(version_of(files), files, message=root.name)
    async with DeploymentLog(bootstrap, names) as log:
        book = await log.read()
        await log.publish(deployment)
        if activate:
            await log.set_state(book.state.activate(deployment.version, reason="test"))
    return deployment.version


async def ferry(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=ROOT,
        env=child_env() | (env or {}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Load:
    """Runs submitted at a steady pace until stopped: the fleet is under load throughout."""

    def __init__(self, submitter: Submitter, per_second: float) -> None:
        self.submitter = submitter
        self.interval = 1.0 / per_second
        self.submitted: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            request = RunRequest.new("echo", {"message": f"load {len(self.submitted)}"})
            await self.submitter.send(request)
            self.submitted.append(request.run_id)
            await asyncio.sleep(self.interval)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self.submitter.flush()


async def _until_results(watcher: ResultWatcher, condition: Any, timeout: float, what: str) -> None:
    async def polled() -> bool:
        await watcher.poll(timeout_ms=100)
        return bool(condition())

    await wait_for(polled, timeout, what=what)


async def test_three_workers_switch_to_v2_and_roll_back_to_v1_within_5_s_under_load(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames, prefix: str
) -> None:
    v1_dir = version_dir(tmp_path / "v1", "You are version one.", max_concurrent_runs=9)
    v2_dir = version_dir(tmp_path / "v2", "You are version two.", max_concurrent_runs=9)
    v1 = await publish(kafka_bootstrap, names, v1_dir)
    async with LLMSimulator([], latency_ms=400, record_requests=False) as sim:
        project = write_project(
            v1_dir, {"echo": llm_agent(system_prompt="You are version one.", max_concurrent_runs=9)}
        )
        workers = [make_worker(project, sim.base_url) for _ in range(3)]
        for worker in workers:
            await worker.start()
        await wait_for(lambda: all(w.processor and w.processor.assigned("echo") for w in workers), 60, what="3 workers")
        apps = [w.app for w in workers]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            load = Load(submitter, per_second=15)
            async with load.running():
                await _until_results(watcher, lambda: len(watcher.results) >= 20, 60, "v1 results")
                assert {r.deployment for r in watcher.results.values()} == {v1}

                v2 = await publish(kafka_bootstrap, names, v2_dir)
                activated_v2 = datetime.now(UTC)
                await _until_results(
                    watcher,
                    lambda: sum(r.deployment == v2 for r in watcher.results.values()) >= 30,
                    60,
                    "new runs on v2",
                )

                code, out, err = await ferry("rollback", "--broker", kafka_bootstrap, "--topic-prefix", prefix)
                rolled_back = datetime.now(UTC)
                assert code == 0, err
                assert out.strip() == v1 and f"rolled back: {v2} → {v1}" in err
                switched = time.monotonic()
                await wait_for(
                    lambda: all(w.versions is not None and w.versions.state.active == v1 for w in workers),
                    5,
                    what="every worker back on v1",
                )
                all_switched_after = time.monotonic() - switched
                served_before = [w.processor.counts["results"] if w.processor else 0 for w in workers]
                await _until_results(
                    watcher,
                    lambda: (
                        sum(r.deployment == v1 and r.started_at > rolled_back for r in watcher.results.values()) >= 30
                    ),
                    60,
                    "new runs back on v1",
                )
            results = await watcher.wait_for(load.submitted, timeout=120)
            await watcher.read_to_end()

    assert len(results) == len(load.submitted)  # nothing lost
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
    assert watcher.duplicates == 0
    on_v2 = [r for r in results.values() if r.deployment == v2]
    on_v1 = [r for r in results.values() if r.deployment == v1]
    assert on_v2 and len(on_v1) + len(on_v2) == len(results)
    # In flight when v2 became active: started on v1, finished on v1 after the switch.
    assert any(r.started_at < activated_v2 < r.ended_at for r in on_v1)
    # New runs on v2 after the deploy, and back on v1 within 5 s of `ferry rollback` returning.
    assert min(r.started_at for r in on_v2) >= activated_v2 - timedelta(seconds=1)
    last_v2_start = max(r.started_at for r in on_v2)
    assert last_v2_start < rolled_back + timedelta(seconds=5), last_v2_start - rolled_back
    assert all_switched_after < 5
    # Every worker served runs after the rollback, on the same process: none restarted.
    assert all(w.processor and w.processor.counts["results"] > n for w, n in zip(workers, served_before, strict=True))
    assert [w.app for w in workers] == apps and all(w.app is not None for w in workers)


async def test_a_pinned_run_uses_its_version_and_a_canary_takes_its_slice(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames, prefix: str
) -> None:
    v1_dir = version_dir(tmp_path / "v1", "One.", max_concurrent_runs=20)
    v2_dir = version_dir(tmp_path / "v2", "Two.", max_concurrent_runs=20)
    v1 = await publish(kafka_bootstrap, names, v1_dir)
    v2 = await publish(kafka_bootstrap, names, v2_dir)  # active
    async with LLMSimulator([], latency_ms=0, record_requests=False) as sim:
        project = write_project(v2_dir, {"echo": llm_agent(system_prompt="Two.", max_concurrent_runs=20)})
        worker = make_worker(project, sim.base_url)
        await worker.start()
        await worker.wait_assigned()
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            pinned = RunRequest.new("echo", {"message": "pinned"}, deployment=v1)
            plain = RunRequest.new("echo", {"message": "plain"})
            for request in (pinned, plain):
                await submitter.submit(request)
            first = await watcher.wait_for([pinned.run_id, plain.run_id], timeout=60)
            assert first[pinned.run_id].deployment == v1 and first[plain.run_id].deployment == v2

            code, _, err = await ferry(
                "activate", v1, "--canary", "10", "--broker", kafka_bootstrap, "--topic-prefix", prefix
            )
            assert code == 0, err
            await wait_for(lambda: worker.versions is not None and worker.versions.state.canary is not None, 10)
            assert worker.versions is not None
            state = worker.versions.state
            requests = [RunRequest.new("echo", {"message": f"c{i}"}) for i in range(300)]
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            results: dict[str, RunResult] = await watcher.wait_for([r.run_id for r in requests], timeout=120)

    assert all(results[r.run_id].deployment == choose_version(r.run_id, state) for r in requests)
    canary = sum(results[r.run_id].deployment == v1 for r in requests)
    assert 15 <= canary <= 45, canary  # 10 % of 300 by the run-id split (exact per run above)


def _git(root: Path, *args: str) -> None:
    identity = ["-c", "user.name=Ada", "-c", "user.email=ada@example.com"]
    subprocess.run(["git", *identity, "-C", str(root), *args], check=True, capture_output=True)


async def test_deploy_with_a_failing_test_exits_1_and_leaves_the_active_deployment(
    tmp_path: Path, kafka_bootstrap: str, names: TopicNames, prefix: str
) -> None:
    root = version_dir(tmp_path / "app", "Answer briefly.")
    suite = {
        "version": "1.0",
        "defaults": {"runs": 1, "timeout_s": 30},
        "tests": [{"name": "answers", "payload": '{"message": "hi"}', "expected_result": 'status == "completed"'}],
    }
    (root / "tests").mkdir()
    (root / "tests" / "echo.yaml").write_text(yaml.safe_dump(suite))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "echo agent with a passing test")
    common = ("--project", str(root), "--broker", kafka_bootstrap, "--topic-prefix", prefix)
    async with LLMSimulator([], latency_ms=0, record_requests=False) as sim:
        env = {"FERRY_LLM_BASE_URL": sim.base_url}
        code, out, err = await ferry("deploy", *common, env=env)
        assert code == 0, err
        good = out.strip()
        assert "tests: ok" in err and "1 passed" in err

        suite["tests"][0]["expected_result"] = 'output == "something the model never says"'
        (root / "tests" / "echo.yaml").write_text(yaml.safe_dump(suite))
        (root / "agents" / "echo.yaml").write_text(
            (root / "agents" / "echo.yaml").read_text().replace("briefly", "at length")
        )
        _git(root, "commit", "-q", "-am", "a prompt whose test fails")
        code, out, err = await ferry("deploy", *common, env=env)
    assert code == 1, err
    assert "tests: FAILED" in err and "echo::answers" in err and "the active deployment is unchanged" in err
    assert out == ""
    async with DeploymentLog(kafka_bootstrap, names) as log:
        book = await log.read()
    assert book.state.active == good and list(book.deployments) == [good]  # nothing published

    code, out, err = await ferry("deployments", *common[2:], "--json")
    assert code == 0, err
    assert '"state": "active"' in out and good in out


async def test_a_worker_with_no_project_folder_runs_the_active_deployment(
    tmp_path: Path, kafka_bootstrap: str, names: TopicNames, prefix: str
) -> None:
    """`ferry worker --from-deployments`: nothing on disk but Ferry; the project comes from Kafka."""
    v1_dir = version_dir(tmp_path / "v1", "Shipped through Kafka.")
    v1 = await publish(kafka_bootstrap, names, v1_dir)
    nowhere = tmp_path / "no-project-here"
    async with LLMSimulator([], latency_ms=0) as sim:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "worker", "--from-deployments", "--project", str(nowhere),
            "--broker", kafka_bootstrap, "--topic-prefix", prefix, "--app-id", f"{prefix}w", "--no-history",
            "--no-metrics",
            cwd=ROOT, env=child_env() | {"FERRY_LLM_BASE_URL": sim.base_url}, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stderr is not None
        try:
            async with asyncio.timeout(120):
                while b"consuming" not in (line := await process.stderr.readline()):
                    assert line, "the worker exited"
            project = write_project(v1_dir, {"echo": llm_agent(system_prompt="Shipped through Kafka.")})
            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                request = RunRequest.new("echo", {"message": "hello"})
                await submitter.submit(request)
                result = (await watcher.wait_for([request.run_id], timeout=60))[request.run_id]
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 60)
    assert result.status == RunStatus.COMPLETED and result.deployment == v1
    assert code == 0 and not nowhere.exists()
    assert any("Shipped through Kafka." in str(r.body) for r in sim.requests)
