"""Engines in one process are independent: closing one never breaks another."""

from __future__ import annotations

from collections.abc import Callable

from app.contracts import RunRequest, RunStatus
from app.engine import Engine
from tests.integration.engine.conftest import ProjectFactory


async def test_closing_one_engine_leaves_another_in_the_process_working(
    make_project: ProjectFactory, engine_factory: Callable[..., Engine]
) -> None:
    project = make_project([{"name": "echo"}])
    first, second = engine_factory(project), engine_factory(project)
    assert (await first.run(RunRequest.new("echo", "before"))).status == RunStatus.COMPLETED

    await first.aclose()
    result = await second.run(RunRequest.new("echo", "after"))

    assert result.status == RunStatus.COMPLETED, result.error
    assert "after" in result.output
