"""`ferry worker`, `submit`, `topics` and `demo` as a user runs them, failures included.

A user error (no broker, an unreachable one, an unknown agent) is one line on stderr
saying what and how to fix it, exit 2, never a traceback, and nothing left open
(aiokafka would print "Unclosed AIOKafkaProducer" at exit).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.devstack.llm_sim import LLMSimulator
from app.streams import TopicNames
from app.streams.bindings import bindings_for, plan_for_bindings
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams.conftest import WorkerFactory, child_env, llm_agent, write_project

ROOT = Path(__file__).resolve().parents[3]
NOWHERE = "127.0.0.1:1"  # nothing listens on port 1


async def _ferry(*args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=ROOT,
        env=child_env() | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _one_clean_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Unclosed" not in err and "ERROR" not in err, err
    return lines[0]


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


async def test_an_unknown_agent_is_one_line_listing_the_known_ones(tmp_path) -> None:
    write_project(tmp_path, {"echo": llm_agent(), "other": llm_agent()})
    # No broker needed to say so: the agent is checked first.
    code, out, err = await _ferry("submit", "nope", "--input", "{}", "--project", str(tmp_path), "--broker", NOWHERE)
    line = _one_clean_line(err)
    assert code == 2 and out == ""
    assert line == f"ferry: no agent 'nope' in {tmp_path} (known: echo, other)"


@pytest.mark.parametrize(
    "command",
    [
        ("worker",),
        ("submit", "echo", "--input", "{}"),
        ("submit", "echo", "--input", "{}", "--wait"),
        ("topics", "apply"),
        ("demo",),
    ],
    ids=lambda c: " ".join(c[:2]) + (" --wait" if "--wait" in c else ""),
)
async def test_an_unreachable_broker_is_one_line_naming_it_and_the_fix(tmp_path, command: tuple[str, ...]) -> None:
    write_project(tmp_path, {"echo": llm_agent()})
    # demo reads the broker from the environment, the others get --broker too
    options = ("--project", str(tmp_path)) + (() if command[0] == "demo" else ("--broker", NOWHERE))
    code, out, err = await _ferry(*command, *options, FERRY_BROKER=NOWHERE)
    line = _one_clean_line(err)
    assert code == 2 and out == "", err
    assert line.startswith(f"ferry: cannot reach the Kafka broker at {NOWHERE} — fix: ")
    assert "ferry dev up" in line and "--broker" in line


async def test_submitting_to_a_topic_that_does_not_exist_says_how_to_create_it(
    tmp_path, kafka_bootstrap: str, prefix: str
) -> None:
    write_project(tmp_path, {"echo": llm_agent()})
    common = ("--project", str(tmp_path), "--broker", kafka_bootstrap, "--topic-prefix", prefix)
    code, out, err = await _ferry("submit", "echo", "--input", "{}", *common)
    line = _one_clean_line(err)
    assert code == 2 and out == ""
    assert line == f"ferry: topic '{TopicNames(prefix).request('echo')}' does not exist — fix: run `ferry topics apply`"


async def test_no_broker_at_all_says_where_it_looked_and_what_to_do(tmp_path) -> None:
    write_project(tmp_path, {"echo": llm_agent()})
    home = tmp_path / "no-stack-here"
    code, _, err = await _ferry("worker", "--project", str(tmp_path), FERRY_BROKER="", FERRY_HOME=str(home))
    line = _one_clean_line(err)
    assert code == 2
    assert f"no dev stack running in {home} (FERRY_HOME)" in line
    assert "--broker HOST:PORT" in line and "FERRY_BROKER" in line and "ferry dev up" in line


async def test_topics_plan_needs_no_broker(tmp_path) -> None:
    write_project(tmp_path, {"echo": llm_agent()})
    code, out, err = await _ferry("topics", "plan", "--project", str(tmp_path), "--broker", NOWHERE)
    assert code == 0 and err == ""
    assert "agent.echo.requests  partitions=" in out


async def test_topics_apply_names_each_topic_once_and_reports_a_conflict_with_exit_code_1(
    tmp_path, kafka_bootstrap: str, prefix: str
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=3)})
    names = TopicNames(prefix)
    planned = [t.name for t in plan_for_bindings(project, names, bindings_for(project, names, None), None)]
    common = ("--broker", kafka_bootstrap, "--topic-prefix", prefix)
    code, out, err = await _ferry("topics", "apply", "--project", str(tmp_path), *common)
    assert code == 0 and err == ""
    assert out.splitlines() == [f"created   {name}" for name in planned]

    recapped = tmp_path / "recapped"
    write_project(recapped, {"echo": llm_agent(max_concurrent_runs=1)})  # a new cap: the topics still fit
    code, out, err = await _ferry("topics", "apply", "--project", str(recapped), *common)
    assert code == 0 and err == ""

    tight = tmp_path / "tight"
    write_project(tight, {"echo": llm_agent(max_concurrent_runs=3)})
    (tight / "topics").mkdir()
    (tight / "topics" / "results.yaml").write_text(  # a spec the existing runs.results contradicts
        "topics:\n  - {class: results, name: runs.results, partitions: 6, cleanup_policy: delete}\n"
    )
    code, out, err = await _ferry("topics", "apply", "--project", str(tight), *common)
    assert code == 1
    lines = out.splitlines() + err.splitlines()
    assert len(lines) == len(planned)
    for name in planned:  # each topic named once, on one line
        assert sum(line.split()[1].rstrip(":") == name for line in lines) == 1, name
    conflict = next(line for line in err.splitlines() if names.results in line)
    assert conflict.startswith(f"CONFLICT  {names.results}: cleanup.policy is compact, spec wants delete")

    # A worker refuses to start on that topic: a user error, said in one line.
    code, _, err = await _ferry("worker", "--project", str(tight), *common, "--app-id", unique("refused"))
    line = _one_clean_line(err)
    assert code == 2
    assert line.startswith("ferry: topics conflict with their specs: ") and "cleanup.policy" in line


async def test_a_worker_start_logs_no_error(tmp_path, kafka_bootstrap: str, prefix: str) -> None:
    """A new consumer group waits for its coordinator: aiokafka logs that as an ERROR; Ferry does not."""
    write_project(tmp_path, {"echo": llm_agent()})
    app_id = unique("ferry-fresh-group")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "worker",
        "--project",
        str(tmp_path),
        "--broker",
        kafka_bootstrap,
        "--topic-prefix",
        prefix,
        "--app-id",
        app_id,
        cwd=ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:

        async def group_is_stable() -> bool:
            [response] = await admin.describe_consumer_groups([app_id])
            return bool(response.groups) and response.groups[0][2] == "Stable"

        await wait_for(group_is_stable, 60, interval=0.2, what="the worker's consumer group to be stable")
    finally:
        await admin.close()
        process.send_signal(signal.SIGTERM)
        _, err_bytes = await asyncio.wait_for(process.communicate(), 60)
    err = err_bytes.decode()
    assert process.returncode == 0, err
    assert "consuming" in err
    assert [line for line in err.splitlines() if " ERROR " in line or "Traceback" in line] == []
