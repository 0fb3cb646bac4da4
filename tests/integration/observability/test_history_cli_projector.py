"""`ferry history project` as a process: it consumes into the store until SIGTERM, then
exits 0, and `ferry runs` (another process) reads what it wrote."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.observability.history import HistoryStore
from app.streams import TopicNames
from tests.integration.kafka_helpers import create_topics, unique
from tests.integration.observability.conftest import publish, wait_for_counts
from tests.unit.observability.history_samples import llm_run_spans, result

pytestmark = pytest.mark.integration


async def test_history_project_runs_until_stopped_and_ferry_runs_reads_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    names = TopicNames(unique("cli") + ".")
    await create_topics(kafka_bootstrap, [names.results, names.traces])
    env = {
        **os.environ,
        "FERRY_BROKER": kafka_bootstrap,
        "FERRY_HOME": str(tmp_path / "home"),
        "FERRY_APP_ID": unique("app"),
        "FERRY_TOPIC_PREFIX": names.prefix,
    }
    env.pop("FERRY_DATABASE_URL", None)
    (tmp_path / "ferry.yaml").write_text("history:\n  retention_days: 3650\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "history", "project", "--project", str(tmp_path),
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await publish(kafka_bootstrap, names, [result("cli-run", agent="summarizer")], llm_run_spans("cli-run"))
        database = tmp_path / "home" / "history.db"
        async with asyncio.timeout(60):
            while not database.exists():
                assert process.returncode is None, "ferry history project exited early"
                await asyncio.sleep(0.1)
        store = HistoryStore.open(f"sqlite:///{database}", create=False)
        await wait_for_counts(store, 1, 7)
        store.close()
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, raw_err = await process.communicate()
    err = raw_err.decode()
    assert process.returncode == 0, err
    assert f"group {env['FERRY_APP_ID']}.history, retention 3650 d" in err
    assert "1 results and 7 spans stored" in err

    listed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "runs", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, list_err = await listed.communicate()
    assert listed.returncode == 0, list_err.decode()
    assert out.decode().splitlines()[1].startswith("cli-run  summarizer")


def test_history_project_without_a_broker_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FERRY_BROKER"}
    env["FERRY_HOME"] = str(tmp_path)  # no dev stack running there
    done = subprocess.run(
        [sys.executable, "-m", "app", "history", "project", "--project", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "no Kafka broker" in done.stderr
