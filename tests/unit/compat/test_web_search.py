"""web_search behind the provider of ferry.yaml, against a local server speaking each API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.compat.web_search import WebSearch
from app.contracts import RunRequest, RunStatus
from app.contracts.errors import ToolError
from app.engine import Engine
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.project import load_project
from app.project.config import WebSearchConfig

HITS = [{"title": "Kafka", "url": "https://kafka.apache.org", "snippet": "A distributed event store."}]


@pytest.fixture
async def provider() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """SearXNG, Tavily and Brave on one local server; every request it got is recorded."""
    seen: list[dict[str, Any]] = []

    async def searxng(request: web.Request) -> web.Response:
        seen.append({"api": "searxng", **request.query})
        if request.query["q"] == "fail":
            return web.json_response({"error": "down"}, status=503)
        results = [{"title": h["title"], "url": h["url"], "content": h["snippet"]} for h in HITS]
        return web.json_response({"results": results * 20})

    async def tavily(request: web.Request) -> web.Response:
        seen.append({"api": "tavily", "auth": request.headers.get("Authorization"), **(await request.json())})
        return web.json_response(
            {"results": [{"title": h["title"], "url": h["url"], "content": h["snippet"]} for h in HITS]}
        )

    async def brave(request: web.Request) -> web.Response:
        seen.append({"api": "brave", "token": request.headers.get("X-Subscription-Token"), **request.query})
        items = [{"title": h["title"], "url": h["url"], "description": h["snippet"]} for h in HITS]
        return web.json_response({"web": {"results": items}})

    app = web.Application()
    app.router.add_get("/search", searxng)
    app.router.add_post("/search", tavily)
    app.router.add_get("/res/v1/web/search", brave)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), seen
    await server.close()


EXPECTED = {"results": [{"title": "Kafka", "url": "https://kafka.apache.org", "content": "A distributed event store."}]}


async def test_each_provider_answers_in_the_sdks_shape(
    provider: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = provider
    monkeypatch.setenv("SEARCH_KEY", "k-123")
    searxng = WebSearch(WebSearchConfig(provider="searxng", url=url))
    assert len((await searxng.web_search("kafka", max_results=3))["results"]) == 3  # capped as asked
    tavily = WebSearch(WebSearchConfig(provider="tavily", url=url, api_key_env="SEARCH_KEY"))
    assert await tavily.web_search("kafka", include_news=True) == EXPECTED
    brave = WebSearch(WebSearchConfig(provider="brave", url=url, api_key_env="SEARCH_KEY"))
    assert await brave.web_search("kafka", country="de") == EXPECTED
    assert seen[1]["auth"] == "Bearer k-123" and seen[1]["topic"] == "news"
    assert seen[2]["token"] == "k-123" and seen[2]["country"] == "de"


async def test_a_failing_provider_or_missing_key_is_a_tool_error(
    provider: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = provider
    with pytest.raises(ToolError, match="answered HTTP 503"):
        await WebSearch(WebSearchConfig(provider="searxng", url=url)).web_search("fail")
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ToolError, match="NO_SUCH_KEY is not set"):
        await WebSearch(WebSearchConfig(provider="brave", url=url, api_key_env="NO_SUCH_KEY")).web_search("x")


async def test_an_agent_listing_web_search_gets_the_configured_provider(
    provider: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, _ = provider
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    agent = {"version": "1.0", "name": "researcher", "description": "looks things up", "model": "openai/sim",
             "system_prompt": "Search first.", "tools": ["web_search"]}  # fmt: skip
    (root / "agents" / "researcher.yaml").write_text(yaml.safe_dump(agent))
    (root / "ferry.yaml").write_text(yaml.safe_dump({"web_search": {"provider": "searxng", "url": url}}))
    llm = ScriptedLLM([Reply(tool_calls=[tool_call("web_search", {"query": "kafka", "max_results": 1})]), "found"])
    engine = Engine(load_project(root), llm=llm)
    try:
        result = await engine.run(RunRequest.new("researcher", "what is kafka?"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED
    (answer,) = [json.loads(m["content"]) for m in llm.requests[1].messages if m["role"] == "tool"]
    assert answer == EXPECTED
