"""`ferry dlq` and `ferry replay` as a user runs them: failures kept, listed, run again later.

"Fix the prompt, deploy, replay yesterday's failures": here the provider is down (503)
while three runs fail, then back; the failures are replayed and complete, linked to the
originals, and replaying the same selection again runs nothing twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import FaultKind, FaultReply, LLMSimulator, Match, Rule
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project
from tests.integration.streams.test_cli import _ferry

pytestmark = pytest.mark.integration

KEEP_FAILURES = {"durability": {"agents": {"flaky": {"failed_runs": ["llm_unavailable"]}}}}


async def test_failed_runs_are_listed_and_replayed_once_linked_to_the_originals(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, prefix: str, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"flaky": llm_agent()}, KEEP_FAILURES)
    down = Rule(match=Match(last_user_contains="order"), reply=FaultReply(fault=FaultKind.UNAVAILABLE))
    common = ("--project", str(tmp_path), "--broker", kafka_bootstrap, "--topic-prefix", prefix)
    async with LLMSimulator([down], record_requests=False) as sim:
        worker = make_worker(project, sim.base_url)
        await worker.start()
        await worker.wait_assigned()
        originals = [RunRequest.new("flaky", {"message": f"order {i}"}) for i in range(3)]
        async with ResultWatcher(kafka_bootstrap, names) as watcher:
            async with Submitter(kafka_bootstrap, project, names) as submitter:
                for request in originals:
                    await submitter.submit(request)
                await submitter.send_raw(names.request("flaky"), b"{not json", b"k")  # a dead letter
            failed = await watcher.wait_for([r.run_id for r in originals], timeout=60)
        assert {r.status for r in failed.values()} == {RunStatus.FAILED}
        assert worker.processor is not None
        await wait_for(lambda: worker.processor is not None and worker.processor.counts["dlq"] == 1, 30)

        code, out, err = await _ferry("dlq", "list", "--agent", "flaky", *common)
        assert code == 0, err
        assert all(r.run_id in out for r in originals)
        assert out.count("llm_unavailable") == 3 and out.count("bad_input") == 1

        code, out, err = await _ferry("dlq", "show", originals[0].run_id, *common)
        assert code == 0, err
        shown = json.loads(out)
        assert shown["entry"]["request"]["input"] == {"message": "order 0"}
        assert shown["entry"]["category"] == "llm_unavailable"

        calls_before = sim.calls_total
        code, out, err = await _ferry("dlq", "replay", "--agent", "flaky", "--dry-run", "--deployment", "v7", *common)
        assert code == 1, err  # the dead letter is still no run request: reported, skipped
        assert out.count("would ") == 3 and out.count(" on v7") == 3 and out.count("skip ") == 1
        assert "still not a run request" in out

        sim.set_rules([])  # the provider is back
        async with ResultWatcher(kafka_bootstrap, names) as watcher:
            code, out, err = await _ferry("dlq", "replay", "--agent", "flaky", "--category", "llm_unavailable", *common)
            assert code == 0, err
            replay_ids = re.findall(r"as ([0-9a-f-]{36})", out)
            assert len(replay_ids) == 3
            replayed = await watcher.wait_for(replay_ids, timeout=60)
        assert sim.calls_total == calls_before + 3  # the dry run produced nothing
        assert {r.status for r in replayed.values()} == {RunStatus.COMPLETED}
        linked = {r.trigger.metadata["replay_of"] for r in replayed.values()}
        assert linked == {r.run_id for r in originals}
        assert {r.trigger.source for r in replayed.values()} == {"replay"}

        # The same replay again: the same run ids, recognised by the worker, nothing run twice.
        duplicates = worker.processor.counts["duplicates"]
        code, out, err = await _ferry("dlq", "replay", "--agent", "flaky", "--category", "llm_unavailable", *common)
        assert code == 0, err
        assert sorted(re.findall(r"as ([0-9a-f-]{36})", out)) == sorted(replay_ids)
        await wait_for(
            lambda: worker.processor is not None and worker.processor.counts["duplicates"] >= duplicates + 3, 30
        )
        assert sim.calls_total == calls_before + 3


async def test_replay_runs_a_finished_run_again_as_a_new_linked_run(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, prefix: str, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()})
    common = ("--project", str(tmp_path), "--broker", kafka_bootstrap, "--topic-prefix", prefix)
    async with LLMSimulator([], record_requests=False) as sim:
        worker = make_worker(project, sim.base_url)
        await worker.start()
        await worker.wait_assigned()
        original = RunRequest.new("echo", {"message": "again"}, tenant="acme")
        async with ResultWatcher(kafka_bootstrap, names) as watcher, Submitter(kafka_bootstrap, project, names) as s:
            await s.submit(original)
            await watcher.wait_for([original.run_id], timeout=60)

        code, out, err = await _ferry("replay", original.run_id, "--wait", "--timeout", "60", *common)
        assert code == 0, err
        result = json.loads(out)
        assert result["run_id"] != original.run_id and result["status"] == "completed"
        assert result["output"] == "Simulated reply to: again"
        assert result["trigger"]["source"] == "replay"
        assert result["trigger"]["metadata"]["replay_of"] == original.run_id
        assert result["tenant"] == "acme"
        assert sim.calls_total == 2

        code, out, err = await _ferry("replay", "no-such-run", "--timeout", "10", *common)
        assert code == 2
        assert "no finished run no-such-run" in err and "Traceback" not in err
