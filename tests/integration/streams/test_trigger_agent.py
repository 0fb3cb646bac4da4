"""trigger_agent in a worker: the child is a run of its own through Kafka, linked to its parent."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.streams.conftest import WorkerFactory, write_project

pytestmark = pytest.mark.integration

TOOLS = '''
from connic.tools import trigger_agent


async def delegate(payload: dict, context: dict) -> dict:
    """The parent: hands the order to the child agent, waiting for it or not."""
    answer = await trigger_agent(
        "pricer", {"qty": payload["qty"]}, wait_for_response=payload["wait"], timeout_seconds=30
    )
    return {"child": answer, "me": context["run_id"]}


def price(payload: dict) -> dict:
    """The child: prices an order."""
    return {"total": payload["qty"] * 3}
'''


def project_with_trigger(root: Path):  # type: ignore[no-untyped-def]
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "orders.py").write_text(textwrap.dedent(TOOLS))
    return write_project(
        root,
        {
            "front-desk": {"type": "tool", "tool_name": "orders.delegate", "retry_options": {"attempts": 1}},
            "pricer": {"type": "tool", "tool_name": "orders.price"},
        },
    )


async def test_a_waited_for_child_runs_through_kafka_and_names_its_parent(
    tmp_path: Path, kafka_bootstrap: str, simulator: LLMSimulator, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = project_with_trigger(tmp_path)
    worker = make_worker(project, simulator.base_url)
    await worker.start()
    await worker.wait_assigned()
    waited = RunRequest.new("front-desk", {"qty": 4, "wait": True}, tenant="acme")
    fire_and_forget = RunRequest.new("front-desk", {"qty": 5, "wait": False}, tenant="acme")
    async with ResultWatcher(kafka_bootstrap, names) as watcher, Submitter(kafka_bootstrap, project, names) as sub:
        await sub.submit(waited)
        parent = (await watcher.wait_for([waited.run_id], timeout=60))[waited.run_id]
        assert parent.status is RunStatus.COMPLETED, parent.error
        child_answer = parent.output["child"]
        assert (child_answer["status"], child_answer["response"]) == ("completed", {"total": 12})

        # The child was a run of its own on runs.results, triggered by `agent`, naming its parent.
        child = (await watcher.wait_for([child_answer["run_id"]], timeout=30))[child_answer["run_id"]]
        assert (child.agent, child.tenant, child.output) == ("pricer", "acme", {"total": 12})
        assert child.trigger.source == "agent"
        assert child.trigger.metadata == {
            "parent_run_id": waited.run_id,
            "parent_agent": "front-desk",
            "root_run_id": waited.run_id,
        }

        # Without waiting, the parent gets the child's run id at once and the child still runs.
        await sub.submit(fire_and_forget)
        parent = (await watcher.wait_for([fire_and_forget.run_id], timeout=60))[fire_and_forget.run_id]
        assert parent.status is RunStatus.COMPLETED, parent.error
        assert set(parent.output["child"]) == {"run_id"}
        later = await watcher.wait_for([parent.output["child"]["run_id"]], timeout=30)
        assert later[parent.output["child"]["run_id"]].output == {"total": 15}
