"""The engine's default model client picks a path per model, and litellm is imported only when one needs it.

Each case runs in a fresh interpreter, since whether litellm was imported is a fact of
the whole process: the worker's modules are imported, an engine is built for the
project as a worker builds it and one run goes to the simulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import asyncio, json, os, sys
import app.cli.worker, app.streams.worker  # the worker's own modules: none may import litellm
from app.contracts import RunRequest
from app.devstack.llm_sim import LLMSimulator, Rule, TextReply
from app.engine import EngineSettings
from app.project import load_project
from app.streams import StreamSettings, Worker

async def main(root, use_base_url):
    async with LLMSimulator([Rule(reply=TextReply(text="done"))]) as sim:
        os.environ["OPENAI_BASE_URL"] = sim.base_url  # where openai/... goes without FERRY_LLM_BASE_URL
        base_url = sim.base_url if use_base_url == "yes" else None
        settings = EngineSettings(llm_base_url=base_url, llm_api_key="k")
        # The engine exactly as a worker builds it at start (no broker is reached for that).
        worker = Worker(load_project(root), StreamSettings(bootstrap="127.0.0.1:1"), engine_settings=settings)
        engine = worker._make_engine(worker.project)
        after_start = "litellm" in sys.modules
        result = await engine.run(RunRequest.new("a", "hi"))
        await engine.aclose()
        print(json.dumps({
            "status": result.status.value, "error": result.error and result.error.message,
            "output": result.output, "cost": result.usage.cost_usd, "calls": sim.calls_total,
            "after_start": after_start, "after_run": "litellm" in sys.modules,
        }))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def run_probe(tmp_path: Path, model: str, *, base_url: bool, models: dict[str, Any] | None = None) -> dict[str, Any]:
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    agent = {"version": "1.0", "name": "a", "description": "probe", "model": model, "system_prompt": "Be brief."}
    (root / "agents" / "a.yaml").write_text(yaml.safe_dump(agent))
    if models is not None:
        (root / "ferry.yaml").write_text(yaml.safe_dump({"models": models}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FERRY_LLM_", "OPENAI_", "AZURE_"))}
    env["OPENAI_API_KEY"] = "sk-probe"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), "yes" if base_url else "no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_worker_on_ferry_llm_base_url_never_imports_litellm(tmp_path: Path) -> None:
    probe = run_probe(tmp_path, "openai/sim-model", base_url=True)
    assert (probe["status"], probe["output"], probe["calls"]) == ("completed", "done", 1), probe
    assert probe["after_start"] is False and probe["after_run"] is False


def test_openai_models_take_the_direct_path_and_are_priced_without_litellm(tmp_path: Path) -> None:
    probe = run_probe(tmp_path, "openai/gpt-4o-mini", base_url=False)
    assert (probe["status"], probe["calls"]) == ("completed", 1), probe
    assert probe["cost"] is not None and probe["cost"] > 0  # OpenAI's list price, from litellm's file
    assert probe["after_run"] is False


def test_a_model_on_litellm_imports_it_at_start_and_runs_through_it(tmp_path: Path) -> None:
    probe = run_probe(tmp_path, "openai/gpt-4o-mini", base_url=False, models={"openai/gpt-4o-mini": {"api": "litellm"}})
    assert (probe["status"], probe["calls"]) == ("completed", 1), probe
    assert probe["after_start"] is True  # paid when the engine is built, not inside the first run
    assert probe["cost"] is not None and probe["cost"] > 0
