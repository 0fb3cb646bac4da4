"""`ferry worker` records its runs in the history store by default, as a user runs it: the
real command in its own process, a SQLite store under a temporary FERRY_HOME, and
`ferry runs` (another process) listing what it recorded. `--no-history` records nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.observability.history import HistoryStore
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams.conftest import child_env, llm_agent, write_project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@asynccontextmanager
async def ferry_worker(*options: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ferry worker` until it says it is consuming; SIGTERM and exit 0 at the end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "worker", *options,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen: list[bytes] = []
    async with asyncio.timeout(90):
        while b"consuming" not in (line := await process.stderr.readline()):
            assert line, "the worker exited before consuming: " + b"".join(seen).decode()
            seen.append(line)
    seen.append(line)
    rest = asyncio.ensure_future(process.stderr.read())  # keep the pipe from filling
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await process.wait()
        err = (b"".join(seen) + await rest).decode()
        process.captured_stderr = err  # type: ignore[attr-defined]
        assert process.returncode == 0, err
        assert "Traceback" not in err, err


async def _ferry_runs(env: dict[str, str]) -> tuple[int, str, str]:
    listed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "runs", "--json", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await listed.communicate()
    assert listed.returncode is not None
    return listed.returncode, out.decode(), err.decode()


async def _run_two(bootstrap: str, project_dir: Path, names: TopicNames) -> list[RunRequest]:
    from app.project import load_project

    project = load_project(project_dir)
    requests = [RunRequest.new("echo", {"message": f"hello {i}"}, tenant="acme") for i in range(2)]
    async with ResultWatcher(bootstrap, names) as watcher, Submitter(bootstrap, project, names) as submitter:
        for request in requests:
            await submitter.submit(request)
        results = await watcher.wait_for([r.run_id for r in requests], timeout=90)
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
    return requests


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's temp dirs go here, where the test can see whether any is left."""
    root = tmp_path / "temp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
async def simulator() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator([], latency_ms=0, record_requests=False) as sim:
        yield sim


def _env(tmp_path: Path, bootstrap: str, prefix: str, sim: LLMSimulator) -> dict[str, str]:
    env = child_env() | {
        "FERRY_BROKER": bootstrap,
        "FERRY_HOME": str(tmp_path / "home"),
        "FERRY_APP_ID": unique("hist-worker"),
        "FERRY_TOPIC_PREFIX": prefix,
        "FERRY_LLM_BASE_URL": sim.base_url,
    }
    env.pop("FERRY_DATABASE_URL", None)
    return env


async def test_a_worker_projects_its_runs_into_the_history_and_ferry_runs_lists_them(
    tmp_path: Path, kafka_bootstrap: str, simulator: LLMSimulator
) -> None:
    prefix = unique("wh") + "."
    write_project(tmp_path / "project", {"echo": llm_agent()})
    env = _env(tmp_path, kafka_bootstrap, prefix, simulator)
    database = tmp_path / "home" / "history.db"

    async with ferry_worker("--project", str(tmp_path / "project"), "--metrics-port", "0", env=env):
        requests = await _run_two(kafka_bootstrap, tmp_path / "project", TopicNames(prefix))
        assert database.exists()  # created by the worker's projector at start
        store = HistoryStore.open(f"sqlite:///{database}", create=False)
        try:
            await wait_for(lambda: store.counts()[0] == 2, 60, what="the worker's projector to store both runs")
        finally:
            store.close()

    code, out, err = await _ferry_runs(env)  # after the worker stopped: the store answers alone
    assert code == 0, err
    listed = {run["run_id"]: run for run in json.loads(out)}
    assert set(listed) == {r.run_id for r in requests}
    for run in listed.values():
        assert (run["agent"], run["status"], run["tenant"]) == ("echo", "completed", "acme")
        assert run["prompt_tokens"] > 0


async def test_no_history_records_nothing_and_warning_level_logs_no_run_line(
    tmp_path: Path, kafka_bootstrap: str, simulator: LLMSimulator
) -> None:
    prefix = unique("wn") + "."
    write_project(tmp_path / "project", {"echo": llm_agent()})
    env = _env(tmp_path, kafka_bootstrap, prefix, simulator)

    options = ("--project", str(tmp_path / "project"), "--no-history", "--no-metrics", "--log-level", "warning")
    async with ferry_worker(*options, env=env) as worker:
        await _run_two(kafka_bootstrap, tmp_path / "project", TopicNames(prefix))
    # --log-level warning: the start and stop lines, no line per completed run
    assert "consuming" in worker.captured_stderr and "stopping" in worker.captured_stderr
    assert "run finished" not in worker.captured_stderr

    assert not (tmp_path / "home").exists() or os.listdir(tmp_path / "home") == []
    code, _, err = await _ferry_runs(env)
    assert code == 2 and "no run history" in err.lower(), err


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        # --no-metrics: the only line is the database's, whatever holds the default metrics port.
        (("--database-url", "postgresql://ferry@127.0.0.1:1/ferry", "--no-metrics"), "ferry: cannot reach"),
        (("--metrics-port", "TAKEN"), "ferry: cannot serve metrics on 127.0.0.1:"),
    ],
    ids=["history database unreachable", "metrics port taken"],
)
async def test_a_part_that_cannot_start_stops_the_worker_in_one_line(
    tmp_path: Path, kafka_bootstrap: str, simulator: LLMSimulator, option: tuple[str, str], expected: str
) -> None:
    write_project(tmp_path / "project", {"echo": llm_agent()})
    env = _env(tmp_path, kafka_bootstrap, unique("wf") + ".", simulator)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        options = [o.replace("TAKEN", str(taken.getsockname()[1])) for o in option]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "worker", "--project", str(tmp_path / "project"), "--metrics-host",
            "127.0.0.1", *options, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(120):
            out, err = await process.communicate()
    lines = err.decode().strip().splitlines()
    assert process.returncode == 2 and out == b""
    assert len(lines) == 1 and lines[0].startswith(expected), err.decode()
    assert "Traceback" not in err.decode() and "Unclosed" not in err.decode()


async def test_a_projector_failing_to_start_undoes_the_whole_worker(
    tmp_path: Path, kafka_bootstrap: str, temp_root: Path
) -> None:
    from app.contracts.errors import ServiceUnreachableError
    from app.observability.history import HistorySettings
    from app.observability.history.projector import HistoryProjector
    from app.observability.metrics import MetricsEndpoint
    from app.streams import StreamSettings, Worker
    from tests.integration.streams.test_worker_lifecycle import _NeverRuns, _watching

    project = write_project(tmp_path / "project", {"echo": llm_agent()})
    names = TopicNames(unique("wu") + ".")
    settings = StreamSettings(bootstrap=kafka_bootstrap, app_id=unique("wu-app"), topic_prefix=names.prefix)
    history = HistoryProjector(
        kafka_bootstrap, names, HistorySettings(database_url="postgresql://ferry@127.0.0.1:1/ferry", group_id="g")
    )
    endpoint = MetricsEndpoint(host="127.0.0.1", port=0)
    worker = Worker(project, settings, runner=_NeverRuns(), history=history, metrics=endpoint)
    with _watching(temp_root) as leftovers:
        with pytest.raises(ServiceUnreachableError):
            await worker.start()
        assert not worker.outbox.running and not history.running
        assert worker.metrics_server is not None
        with socket.socket() as probe:  # the metrics port, taken at step 2, is free again
            probe.bind(("127.0.0.1", worker.metrics_server.port or 0))
        await leftovers.assert_none()
