"""A run started by trigger_agent names its parent run in the run history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app.compat.trigger import child_request
from app.contracts import RunRequest, RunResult, RunStatus
from app.observability.history import HistoryStore


def test_the_child_row_names_its_parent_and_a_plain_run_none(tmp_path: Path) -> None:
    parent = RunRequest.new("front-desk", {"q": 1}, tenant="acme")
    child = child_request(parent, "pricer", {"qty": 2})
    now = datetime.now(UTC)
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}")
    try:
        store.write(
            [
                RunResult.for_request(request, RunStatus.COMPLETED, started_at=now, ended_at=now)
                for request in (parent, child)
            ]
        )
        rows = {run.run_id: run for run in store.runs()}
    finally:
        store.close()
    assert rows[child.run_id].parent_run_id == parent.run_id
    assert rows[child.run_id].trigger_source == "agent"
    assert rows[child.run_id].root_run_id == child.run_id  # its own request: its own root
    assert rows[parent.run_id].parent_run_id is None
