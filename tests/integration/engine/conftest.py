"""Engine runs through litellm against the in-process LLM simulator: no Kafka, no provider,
real HTTP. Projects are built as in the unit tests (`make_project`, `engine_for` on a fake)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.devstack.llm_sim import LLMSimulator
from app.engine import Clock, Engine, EngineSettings
from app.engine.llm import load_litellm
from app.project import Project
from tests.unit.engine.conftest import MODEL, ProjectFactory, engine_for, make_project

__all__ = ["MODEL", "ProjectFactory", "engine_for", "make_project"]  # fixtures shared with the unit tests


@pytest.fixture(scope="session", autouse=True)
def _litellm_loaded() -> None:
    load_litellm()  # once per session: the import takes seconds


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator() as simulator:
        yield simulator


@pytest.fixture
async def engine_factory(sim: LLMSimulator) -> AsyncIterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def build(project: Project, *, clock: Clock | None = None, **settings: Any) -> Engine:
        options: dict[str, Any] = {"llm_base_url": sim.base_url, "llm_api_key": "sim-key", "retry_jitter": 0.0}
        engine = Engine(project, settings=EngineSettings(**{**options, **settings}), clock=clock)
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.aclose()
