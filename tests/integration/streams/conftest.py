"""Shared fixtures of the streams tests: a throw-away project, the simulator, a worker factory.

Every test gets its own topic prefix and app id, so tests never see each other's
records on the shared session broker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.devstack.llm_sim import LLMSimulator
from app.engine import EngineSettings
from app.project import load_project
from app.project.project import Project
from app.streams import StreamSettings, TopicNames, Worker
from tests.integration.kafka_helpers import unique

logging.getLogger("faust").setLevel(logging.WARNING)
logging.getLogger("mode").setLevel(logging.WARNING)


def write_project(root: Path, agents: dict[str, dict[str, Any]], config: dict[str, Any] | None = None) -> Project:
    """A project of `agents` (name → YAML keys) under `root`, loaded."""
    (root / "agents").mkdir(parents=True, exist_ok=True)
    for name, keys in agents.items():
        data = {"version": "1.0", "name": name, "description": f"test agent {name}", **keys}
        (root / "agents" / f"{name}.yaml").write_text(yaml.safe_dump(data))
    if config is not None:
        (root / "ferry.yaml").write_text(yaml.safe_dump(config))
    return load_project(root)


def llm_agent(**keys: Any) -> dict[str, Any]:
    return {
        "model": "openai/sim-model",
        "system_prompt": "Answer briefly.",
        "max_iterations": 2,
        "retry_options": {"attempts": 1, "initial_delay": 0},
        **keys,
    }


@pytest.fixture
def prefix() -> str:
    return unique("t") + "."


@pytest.fixture
async def simulator() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator([], latency_ms=0, record_requests=False) as sim:
        yield sim


WorkerFactory = Callable[..., Worker]


@pytest.fixture
async def make_worker(kafka_bootstrap: str, prefix: str) -> AsyncIterator[WorkerFactory]:
    """Build (not start) workers on the test's topics; whatever was started is stopped at the end."""
    made: list[Worker] = []
    app_id = unique("ferry-test")

    def factory(project: Project, base_url: str, *, runner: Any = None, **overrides: Any) -> Worker:
        settings = StreamSettings(
            bootstrap=kafka_bootstrap,
            app_id=overrides.pop("app_id", app_id),
            topic_prefix=prefix,
            emit_traces=overrides.pop("emit_traces", False),
            **overrides,
        )
        worker = Worker(project, settings, engine_settings=EngineSettings(llm_base_url=base_url), runner=runner)
        made.append(worker)
        return worker

    yield factory
    for worker in made:
        with contextlib.suppress(Exception):
            await worker.stop()


@pytest.fixture
def names(prefix: str) -> TopicNames:
    return TopicNames(prefix)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # A CLI worker keeps its run history under the Ferry home: a home of its own, so test
    # workers never share (or leave behind) the checkout's `.ferry/dev/history.db`.
    env.setdefault("FERRY_HOME", tempfile.mkdtemp(prefix="ferry-test-home-"))
    return env
