"""The direct path's connection pool is as large as the project's caps: an admitted run's call
is open at the provider, not queued inside Ferry's client (found with bench/bench_scale.py:
10,000 runs in flight in one worker had only 1,000 calls open, and the rest timed out)."""

from __future__ import annotations

import asyncio

import pytest

from app.devstack.llm_sim import LLMSimulator, Rule, TextReply
from app.engine import EngineSettings
from app.engine.model import LLMRequest
from app.engine.model_router import ModelRouter
from app.engine.openai_compat.client import DEFAULT_CONNECTIONS
from tests.unit.engine.conftest import MODEL, ProjectFactory, make_project

pytestmark = pytest.mark.integration

__all__ = ["make_project"]  # the fixture


async def test_every_admitted_call_is_open_at_once_past_the_default_pool(make_project: ProjectFactory) -> None:
    cap = DEFAULT_CONNECTIONS + 100
    project = make_project([{"name": "wide", "model": MODEL, "system_prompt": "Hi.", "max_concurrent_runs": cap}])
    async with LLMSimulator([Rule(reply=TextReply(text="ok"))], latency_ms=4000) as sim:
        router = ModelRouter.for_project(project, EngineSettings(llm_base_url=sim.base_url, llm_api_key="k"))
        try:
            request = LLMRequest(model=MODEL, messages=[{"role": "user", "content": "hi"}], timeout=60)
            answers = await asyncio.gather(*(router.complete(request) for _ in range(cap)))
        finally:
            await router.aclose()
        assert [a.text for a in answers] == ["ok"] * cap
        # With a pool of DEFAULT_CONNECTIONS the peak is DEFAULT_CONNECTIONS at most; every call
        # open at once needs all of them started within one call's 4 s (loaded machines lag).
        assert sim.peak_in_flight > DEFAULT_CONNECTIONS
