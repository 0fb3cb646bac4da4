"""`ModelRouter`: the engine's default model client, one path per model string.

A model whose provider speaks the OpenAI chat-completions protocol and is served
directly (`EndpointTable.path_of`: `openai/…`, `azure/…`, every model when
`FERRY_LLM_BASE_URL` is set, `api:`/`base_url:` in `ferry.yaml`) goes to the
`OpenAICompatClient`; any other goes to litellm, the breadth path. litellm costs seconds
and ~200 MB to import, so it is imported only when a model needs it: at construction
when one of the project's agents names such a model (paid once at start rather than
inside a run's first call), otherwise on the first call that needs it. A worker whose
agents all take the direct path never imports it.
"""

from __future__ import annotations

from app.engine.llm import LiteLLMClient, load_litellm
from app.engine.model import LLMClient, LLMRequest, LLMResponse
from app.engine.openai_compat import EndpointTable, OpenAICompatClient
from app.engine.openai_compat.client import DEFAULT_CONNECTIONS
from app.engine.settings import EngineSettings
from app.project.models import LLMAgentSpec
from app.project.project import Project


class ModelRouter:
    """Sends each request to the direct client or to litellm, by its model string."""

    def __init__(self, endpoints: EndpointTable, *, direct: LLMClient, litellm: LLMClient) -> None:
        self._endpoints = endpoints
        self._direct = direct
        self._litellm = litellm
        self._direct_models: dict[str, bool] = {}  # memo: the answer never changes for a model string

    @classmethod
    def for_project(cls, project: Project, settings: EngineSettings) -> ModelRouter:
        """The router an engine builds for itself; imports litellm now if an agent's model needs it."""
        endpoints = EndpointTable(
            base_url=settings.llm_base_url, api_key=settings.llm_api_key, overrides=project.config.models
        )
        router = cls(
            endpoints,
            # a pool smaller than the project's caps would queue admitted runs' calls inside the client
            direct=OpenAICompatClient(endpoints, connections=max(DEFAULT_CONNECTIONS, total_cap(project))),
            litellm=LiteLLMClient(base_url=settings.llm_base_url, api_key=settings.llm_api_key),
        )
        if any(not router.is_direct(model) for model in project_models(project)):
            load_litellm()
        return router

    def is_direct(self, model: str) -> bool:
        direct = self._direct_models.get(model)
        if direct is None:
            direct = self._direct_models[model] = self._endpoints.path_of(model) == "openai"
        return direct

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if self.is_direct(request.model):
            return await self._direct.complete(request)
        return await self._litellm.complete(request)

    async def aclose(self) -> None:
        for client in (self._direct, self._litellm):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()


def project_models(project: Project) -> set[str]:
    """Every model string an agent of the project may call (primary and fallback)."""
    models: set[str] = set()
    for agent in project.agents.values():
        if isinstance(agent, LLMAgentSpec):
            models.add(agent.model)
            if agent.fallback_model:
                models.add(agent.fallback_model)
    return models


def total_cap(project: Project) -> int:
    """Runs of LLM agents this worker may run at once: each has at most one model call open."""
    return sum(a.max_concurrent_runs for a in project.agents.values() if isinstance(a, LLMAgentSpec))
