"""`ferry cancel` and `ferry submit --idempotency-key --wait` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.contracts import RunRequest
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply
from app.streams import Submitter, TopicNames
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project
from tests.integration.streams.test_cli import _ferry

pytestmark = pytest.mark.integration


async def test_submit_with_a_used_idempotency_key_prints_the_finished_result_at_once(
    tmp_path: Path, kafka_bootstrap: str, simulator: LLMSimulator, make_worker: WorkerFactory, prefix: str
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()})
    worker = make_worker(project, simulator.base_url)
    await worker.start()
    common = ("--project", str(tmp_path), "--broker", kafka_bootstrap, "--topic-prefix", prefix)
    submit = ("submit", "echo", "--input", '{"message": "once"}', "--idempotency-key", "order-7", "--wait")

    code, out, err = await _ferry(*submit, *common)
    assert code == 0, err
    first = json.loads(out)
    await worker.stop()  # no worker any more: only the recorded result can answer now

    code, out, err = await _ferry(*submit, "--timeout", "20", *common)
    assert code == 0, err
    assert "already finished" in err
    again = json.loads(out)
    assert again["run_id"] == first["run_id"] and again["output"] == "Simulated reply to: once"
    assert simulator.calls_total == 1


async def test_cancel_stops_a_running_run_and_refuses_a_finished_one(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, prefix: str, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()})
    slow = Rule(match=Match(last_user_contains="slow"), reply=TextReply(text="too late"), delay_ms=60_000)
    async with LLMSimulator([slow], record_requests=False) as sim:
        await make_worker(project, sim.base_url).start()
        request = RunRequest.new("echo", {"message": "slow"})
        async with Submitter(kafka_bootstrap, project, names) as submitter:
            await submitter.submit(request)
        await wait_for(lambda: sim.calls_total == 1, 60, what="the run to call the model")
        common = ("--broker", kafka_bootstrap, "--topic-prefix", prefix)

        code, out, err = await _ferry("cancel", request.run_id, "--wait", "--timeout", "30", *common)
        assert code == 0, err
        result = json.loads(out)
        assert result["run_id"] == request.run_id and result["status"] == "cancelled"

        code, out, err = await _ferry("cancel", request.run_id, "--wait", "--timeout", "30", *common)
        assert code == 0, err  # cancelled already: its result, at once
        assert json.loads(out)["status"] == "cancelled"
        assert sim.calls_total == 1


async def test_cancel_of_a_completed_run_says_it_already_finished(
    tmp_path: Path, kafka_bootstrap: str, simulator: LLMSimulator, make_worker: WorkerFactory, prefix: str
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()})
    await make_worker(project, simulator.base_url).start()
    common = ("--broker", kafka_bootstrap, "--topic-prefix", prefix)
    code, out, err = await _ferry(
        "submit", "echo", "--input", '{"message": "hi"}', "--wait", "--project", str(tmp_path), *common
    )
    assert code == 0, err
    run_id = json.loads(out)["run_id"]

    code, out, err = await _ferry("cancel", run_id, "--wait", *common)
    assert code == 1
    assert "already finished" in err and json.loads(out)["status"] == "completed"
