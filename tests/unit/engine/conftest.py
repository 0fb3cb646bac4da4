"""Engine runs on the in-process fake model: real projects, real tools, no HTTP, no litellm."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.contracts import SpanEvent, SpanKind
from app.engine import Clock, Engine, EngineSettings, LLMClient, LLMMiddleware
from app.project import Project, load_project

MODEL = "openai/sim-model"

ProjectFactory = Callable[..., Project]
EngineFactory = Callable[..., Engine]


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
async def engine_for() -> AsyncIterator[EngineFactory]:
    """`engine_for(project, llm, clock=..., **settings)`: an engine on `llm`, closed after the test."""
    engines: list[Engine] = []

    def build(
        project: Project,
        llm: LLMClient,
        *,
        clock: Clock | None = None,
        llm_middleware: LLMMiddleware | None = None,
        **settings: Any,
    ) -> Engine:
        engine = Engine(
            project,
            settings=EngineSettings(**{"retry_jitter": 0.0, **settings}),
            llm=llm,
            clock=clock,
            llm_middleware=llm_middleware,
        )
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.aclose()


def of_kind(spans: list[SpanEvent], kind: SpanKind) -> list[SpanEvent]:
    return [span for span in spans if span.kind is kind]


def tool_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message for message in messages if message["role"] == "tool"]
