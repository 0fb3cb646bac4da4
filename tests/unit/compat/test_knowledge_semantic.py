"""Semantic knowledge search: with an embedding model configured, a question finds the passage
that means the same in other words; without one, ranking stays lexical and does not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.compat.documents import DocumentScope
from app.compat.knowledge import Knowledge
from app.contracts import RunRequest, RunStatus
from app.contracts.errors import LLMUnavailableError, ToolError
from app.devstack.llm_sim import LLMSimulator
from app.engine import Engine, EngineSettings
from app.engine.embeddings import EmbeddingRouter, ModelEmbeddings
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.observability.history.knowledge import SqlKnowledgeBackend
from app.project import load_project

MODEL = "openai/sim-embed"
PASSAGES = {
    "refunds": "Refunds for cars are paid within 14 days after the return.",
    "parking": "Parking is free for staff at weekends.",
    "canteen": "The canteen serves lunch from noon until two.",
}
QUESTION = "How do I get my money back for a vehicle?"  # no word in common with the refunds passage


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator() as simulator:
        yield simulator


@pytest.fixture
async def embedder(sim: LLMSimulator, tmp_path: Path) -> AsyncIterator[ModelEmbeddings]:
    (tmp_path / "project" / "agents").mkdir(parents=True)
    router = EmbeddingRouter.for_settings(load_project(tmp_path / "project"), EngineSettings(llm_base_url=sim.base_url))
    yield ModelEmbeddings(router, MODEL, timeout=10)
    await router.aclose()


async def store_all(kb: Knowledge) -> None:
    for entry, text in PASSAGES.items():
        await kb.retrieval_store(text, entry_id=entry, namespace="policies")


async def test_a_paraphrase_is_found_only_with_embeddings(
    backend: SqlKnowledgeBackend, embedder: ModelEmbeddings, sim: LLMSimulator
) -> None:
    lexical = Knowledge(backend, DocumentScope("acme", "prod"))
    semantic = Knowledge(backend, DocumentScope("acme", "prod"), embedder=embedder)
    await store_all(semantic)
    assert [body["model"] for body in sim.embedding_requests] == ["sim-embed"] * 3  # one call per stored entry

    found = (await semantic.retrieval_query(QUESTION, namespace="policies"))["results"]
    assert found and found[0]["entry_id"] == "refunds"
    assert found[0]["score"] >= 0.3 and all(r["entry_id"] != "canteen" for r in found)
    assert (await lexical.retrieval_query(QUESTION, namespace="policies"))["results"] == []

    # The vectors were stored with the chunks: a query embeds the question and nothing else.
    before = len(sim.embedding_requests)
    await semantic.retrieval_query("automobile reimbursement", namespace="policies")
    assert [len(body["input"]) for body in sim.embedding_requests[before:]] == [1]


async def test_entries_stored_before_embeddings_are_embedded_once_on_the_first_query(
    backend: SqlKnowledgeBackend, embedder: ModelEmbeddings, sim: LLMSimulator
) -> None:
    await store_all(Knowledge(backend, DocumentScope("acme", "prod")))  # lexical days: no vectors
    assert sim.embedding_requests == []
    semantic = Knowledge(backend, DocumentScope("acme", "prod"), embedder=embedder)
    found = (await semantic.retrieval_query(QUESTION))["results"]
    assert found[0]["entry_id"] == "refunds"
    assert sorted(len(body["input"]) for body in sim.embedding_requests) == [1, 3]  # the question, the chunks
    stored = await backend.chunks(DocumentScope("acme", "prod"), None)
    assert all(c.vector is not None and c.vector_model == MODEL for c in stored)
    await semantic.retrieval_query(QUESTION)
    assert [len(body["input"]) for body in sim.embedding_requests[2:]] == [1]


async def test_tenants_do_not_find_each_others_passages(
    backend: SqlKnowledgeBackend, embedder: ModelEmbeddings
) -> None:
    await store_all(Knowledge(backend, DocumentScope("acme", "prod"), embedder=embedder))
    other = Knowledge(backend, DocumentScope("globex", "prod"), embedder=embedder)
    assert (await other.retrieval_query(QUESTION, min_score=0.0))["results"] == []


async def test_a_failing_embedding_model_is_the_tools_error(backend: SqlKnowledgeBackend) -> None:
    class Down:
        model = MODEL

        async def embed(self, texts: Any) -> list[list[float]]:
            raise LLMUnavailableError("503 from the embeddings server")

    with pytest.raises(ToolError, match="the embedding model openai/sim-embed failed: 503"):
        await Knowledge(backend, DocumentScope("acme", "prod"), embedder=Down()).retrieval_store("text")


async def desk_answer(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    passages: dict[str, str],
    question: str,
    *,
    ferry_yaml: dict[str, Any] | None = None,
    settings: EngineSettings | None = None,
) -> dict[str, Any]:
    """What an agent's query_knowledge answered, after it stored `passages` in the same run."""
    monkeypatch.setenv("FERRY_DATABASE_URL", f"sqlite:///{tmp_path / 'history.db'}")
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    agent = {
        "version": "1.0",
        "name": "desk",
        "description": "answers from the knowledge base",
        "model": "openai/desk-model",
        "system_prompt": "Answer from the knowledge base.",
        "tools": ["store_knowledge", "query_knowledge"],
    }
    (root / "agents" / "desk.yaml").write_text(yaml.safe_dump(agent))
    if ferry_yaml is not None:
        (root / "ferry.yaml").write_text(yaml.safe_dump(ferry_yaml))
    stores = [
        Reply(tool_calls=[tool_call("store_knowledge", {"content": t, "entry_id": e})]) for e, t in passages.items()
    ]
    llm = ScriptedLLM([*stores, Reply(tool_calls=[tool_call("query_knowledge", {"query": question})]), "done"])
    engine = Engine(load_project(root), settings=settings or EngineSettings(), llm=llm)
    try:
        result = await engine.run(RunRequest.new("desk", "learn, then answer"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED, result.error
    answer: dict[str, Any] = json.loads(llm.requests[-1].messages[-1]["content"])
    return answer


async def test_an_agent_finds_the_paraphrase_with_ferry_yaml_s_embedding_model(
    tmp_path: Path, sim: LLMSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring end to end: ferry.yaml's knowledge.embedding_model reaches the engine's knowledge tools."""
    answer = await desk_answer(
        tmp_path,
        monkeypatch,
        PASSAGES,
        QUESTION,
        ferry_yaml={"knowledge": {"embedding_model": MODEL}},
        settings=EngineSettings(llm_base_url=sim.base_url),
    )
    assert answer["results"][0]["entry_id"] == "refunds"
    assert sim.embedding_requests and all(body["model"] == "sim-embed" for body in sim.embedding_requests)
