"""`web_search`: Connic's search tool, answered by the provider named in ferry.yaml.

Connic runs a managed search service; Ferry calls the one a team configures
(`web_search:` in ferry.yaml, `WebSearchConfig`): a self-hosted SearXNG instance, or
Tavily or Brave with a key from the environment. Each provider's answer is reduced to the
SDK's shape, `{"results": [{"title", "url", "content"}]}`. A provider that fails or is
slower than `timeout_s` is a tool error the model reads; the run goes on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from app.contracts.errors import ToolError
from app.project.config import WebSearchConfig

if TYPE_CHECKING:
    import httpx

MAX_RESULTS = 10
_TAVILY = "https://api.tavily.com"
_BRAVE = "https://api.search.brave.com"


class WebSearch:
    def __init__(self, config: WebSearchConfig) -> None:
        self.config = config

    def _key(self) -> str | None:
        if self.config.api_key_env is None:
            return None
        key = os.environ.get(self.config.api_key_env)
        if not key:
            raise ToolError(f"web_search: the environment variable {self.config.api_key_env} is not set", "web_search")
        return key

    async def web_search(
        self, query: str, max_results: int = 5, country: str | None = None, include_news: bool = False
    ) -> dict[str, Any]:
        if not isinstance(query, str) or not query.strip():
            raise ToolError("web_search needs a query", "web_search")
        wanted = max(1, min(int(max_results), MAX_RESULTS))
        import httpx  # here, not at module level: with rich and pygments it is ~18 MiB every worker pays

        try:
            async with httpx.AsyncClient(timeout=self.config.timeout_s) as client:
                found = await self._search(client, query, wanted, country, include_news)
        except httpx.HTTPStatusError as exc:
            raise ToolError(
                f"web_search: the {self.config.provider} provider answered HTTP {exc.response.status_code}",
                "web_search",
            ) from None
        except httpx.HTTPError as exc:
            raise ToolError(
                f"web_search: the {self.config.provider} provider failed: {type(exc).__name__}", "web_search"
            ) from None
        return {"results": found[:wanted]}

    async def _search(
        self, client: httpx.AsyncClient, query: str, wanted: int, country: str | None, news: bool
    ) -> list[dict[str, str]]:
        provider = self.config.provider
        if provider == "searxng":
            params: dict[str, Any] = {"q": query, "format": "json"}
            if news:
                params["categories"] = "general,news"
            if country:
                params["language"] = f"all-{country.upper()}"
            response = await client.get(f"{(self.config.url or '').rstrip('/')}/search", params=params)
            response.raise_for_status()
            items = response.json().get("results", [])
            return [_item(i.get("title"), i.get("url"), i.get("content")) for i in items]
        if provider == "tavily":
            body: dict[str, Any] = {"query": query, "max_results": wanted, "topic": "news" if news else "general"}
            if country:
                body["country"] = country
            response = await client.post(
                f"{(self.config.url or _TAVILY).rstrip('/')}/search",
                json=body,
                headers={"Authorization": f"Bearer {self._key()}"},
            )
            response.raise_for_status()
            items = response.json().get("results", [])
            return [_item(i.get("title"), i.get("url"), i.get("content")) for i in items]
        headers = {"X-Subscription-Token": self._key() or "", "Accept": "application/json"}
        params = {"q": query, "count": wanted, **({"country": country} if country else {})}
        response = await client.get(
            f"{(self.config.url or _BRAVE).rstrip('/')}/res/v1/web/search", params=params, headers=headers
        )
        response.raise_for_status()
        items = response.json().get("web", {}).get("results", [])
        return [_item(i.get("title"), i.get("url"), i.get("description")) for i in items]


def _item(title: Any, url: Any, content: Any) -> dict[str, str]:
    return {"title": str(title or ""), "url": str(url or ""), "content": str(content or "")}
