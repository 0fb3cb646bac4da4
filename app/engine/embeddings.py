"""Embeddings for Connic's knowledge tools: `ferry.yaml`'s `knowledge.embedding_model`, called
on the path its provider takes, in batches.

    EmbeddingRouter   `Embedder` by model string: the direct OpenAI-protocol client for the
                      models the direct path serves (`openai/…`, `azure/…`, a `base_url`,
                      every model with `FERRY_LLM_BASE_URL`), litellm's `aembedding` for
                      the rest (Cohere, Voyage, Bedrock, Vertex, …); the same decision and
                      the same `models:` overrides as chat models
    LocalEmbedder     the `local/…` models, computed in this process from a model shipped
                      in a PyPI package (app/engine/local_embeddings.py): the default
    ModelEmbeddings   one model bound, what the knowledge tools are given
                      (`app.compat.knowledge.TextEmbedder`)

The embedding client is the engine's own, apart from the chat client (a test's fake
chat model does not stop a project's knowledge from being embedded for real), and is
built only when a provider's embedding model is configured (`embedding_model: none`:
knowledge is ranked lexically and nothing here runs).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.engine.llm import LiteLLMClient
from app.engine.local_embeddings import FULL_SCORE_COSINE, LocalEmbedder, is_local
from app.engine.model import Embedder
from app.engine.openai_compat import EndpointTable, OpenAICompatClient
from app.engine.settings import EngineSettings
from app.project.project import Project

#: Texts per call: OpenAI takes 2048 inputs a call, other servers far fewer; a store of a
#: long document is a few calls.
BATCH = 64


class EmbeddingRouter:
    def __init__(self, endpoints: EndpointTable, *, direct: OpenAICompatClient, litellm: LiteLLMClient) -> None:
        self._endpoints = endpoints
        self._direct = direct
        self._litellm = litellm

    @classmethod
    def for_settings(cls, project: Project, settings: EngineSettings) -> EmbeddingRouter:
        endpoints = EndpointTable(
            base_url=settings.llm_base_url, api_key=settings.llm_api_key, overrides=project.config.models
        )
        return cls(
            endpoints,
            direct=OpenAICompatClient(endpoints),
            litellm=LiteLLMClient(base_url=settings.llm_base_url, api_key=settings.llm_api_key),
        )

    async def embed(self, model: str, texts: Sequence[str], *, timeout: float) -> list[list[float]]:
        client: Embedder = self._direct if self._endpoints.path_of(model) == "openai" else self._litellm
        return await client.embed(model, texts, timeout=timeout)

    async def aclose(self) -> None:
        await self._direct.aclose()


class ModelEmbeddings:
    """One embedding model: texts to vectors, `BATCH` texts a call."""

    def __init__(
        self,
        embedder: Embedder,
        model: str,
        *,
        timeout: float,
        router: EmbeddingRouter | None = None,
        full_score_cosine: float = 1.0,
    ) -> None:
        self._embedder = embedder
        self.model = model
        self._timeout = timeout
        self._router = router  # closed with this
        self._full_score_cosine = full_score_cosine

    @classmethod
    def local(cls, model: str, *, timeout: float) -> ModelEmbeddings:
        """A `local/…` model, computed in this process, with its own score scale."""
        return cls(LocalEmbedder(), model, timeout=timeout, full_score_cosine=FULL_SCORE_COSINE[model])

    def score(self, cosine: float) -> float:
        """A passage's score in [0, 1] from its cosine similarity to the query."""
        return min(1.0, max(0.0, cosine / self._full_score_cosine))

    async def aclose(self) -> None:
        if self._router is not None:
            await self._router.aclose()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors += await self._embedder.embed(self.model, texts[start : start + BATCH], timeout=self._timeout)
        return vectors


def knowledge_embeddings(project: Project, settings: EngineSettings) -> ModelEmbeddings | None:
    """The knowledge tools' embeddings for `project` (close them with the engine), or None (lexical ranking)."""
    config = project.config.knowledge
    model = config.embedding_model
    if model is None:
        return None
    if is_local(model):
        return ModelEmbeddings.local(model, timeout=config.timeout_s)
    router = EmbeddingRouter.for_settings(project, settings)
    return ModelEmbeddings(router, model, timeout=config.timeout_s, router=router)
