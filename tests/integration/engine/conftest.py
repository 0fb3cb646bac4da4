"""Engine runs against the in-process LLM simulator: no Kafka, no provider, real HTTP."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.devstack.llm_sim import LLMSimulator
from app.engine import Clock, Engine, EngineSettings, LLMMiddleware
from app.engine.llm import load_litellm
from app.project import Project, load_project

MODEL = "openai/sim-model"

ProjectFactory = Callable[..., Project]


@pytest.fixture(scope="session", autouse=True)
def _litellm_loaded() -> None:
    load_litellm()  # once per session: the import takes seconds


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Write a project (agents as dicts, tools as source text) and load it for real."""

    def build(
        agents: list[dict[str, Any]],
        tools: dict[str, str] | None = None,
        schemas: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Project:
        root = tmp_path / "project"
        (root / "agents").mkdir(parents=True, exist_ok=True)
        for agent in agents:
            full = {"version": "1.0", "description": f"test agent {agent['name']}", **agent}
            if full.get("type", "llm") == "llm":
                full.setdefault("model", MODEL)
                full.setdefault("system_prompt", "You are a test agent.")
            (root / "agents" / f"{agent['name']}.yaml").write_text(yaml.safe_dump(full))
        for module, source in (tools or {}).items():
            path = root / "tools" / f"{module.replace('.', '/')}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        for name, schema in (schemas or {}).items():
            (root / "schemas").mkdir(exist_ok=True)
            (root / "schemas" / f"{name}.json").write_text(json.dumps(schema))
        if config is not None:
            (root / "ferry.yaml").write_text(yaml.safe_dump(config))
        return load_project(root)

    return build


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator() as simulator:
        yield simulator


@pytest.fixture
async def engine_factory(sim: LLMSimulator) -> AsyncIterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def build(
        project: Project, *, clock: Clock | None = None, llm_middleware: LLMMiddleware | None = None, **settings: Any
    ) -> Engine:
        options: dict[str, Any] = {"llm_base_url": sim.base_url, "llm_api_key": "sim-key", "retry_jitter": 0.0}
        engine = Engine(
            project, settings=EngineSettings(**{**options, **settings}), clock=clock, llm_middleware=llm_middleware
        )
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.aclose()
