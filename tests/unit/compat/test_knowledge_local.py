"""The default embedding model, `local/wordllama`: shipped in a Python package, loaded with
no network, and good enough that a question in other words finds its passage first."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from app.compat.documents import DocumentScope
from app.compat.knowledge import Knowledge
from app.contracts.errors import ConfigError
from app.engine.embeddings import ModelEmbeddings
from app.engine.local_embeddings import LocalEmbedder
from app.observability.history.knowledge import SqlKnowledgeBackend
from app.project.config import KnowledgeConfig
from tests.unit.compat.test_knowledge_semantic import desk_answer

#: A small handbook, and questions that share no content word with their passage.
HANDBOOK = {
    "leave": "Employees get 25 days of paid annual leave per year; unused days carry over until March.",
    "refunds": "Refunds are issued to the original card within 14 days of the returned item arriving.",
    "holidays": "The office is closed on public holidays; the support line stays open.",
    "expenses": "Expense claims need a receipt for every item above 25 euros.",
    "invoices": "Invoices are due within 30 days; late payments incur a 2% monthly fee.",
    "laptops": "New starters receive a laptop on their first morning from the IT desk.",
    "parking": "Cars may be parked in the basement garage; bicycles go in the courtyard racks.",
    "security": "Passwords must be changed every 90 days and never shared with colleagues.",
}
QUESTIONS = {
    "how much vacation time do staff have": "leave",
    "when will I get my money back": "refunds",
    "do I need proof of purchase for reimbursement": "expenses",
    "payment deadline for bills": "invoices",
    "which computer does a new hire get": "laptops",
    "where can I leave my bike": "parking",
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach a host (a model download) fails the test instead."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network used: {args[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


async def test_questions_in_other_words_find_their_passage_first_with_no_network(
    backend: SqlKnowledgeBackend, no_network: None
) -> None:
    embedder = ModelEmbeddings.local("local/wordllama", timeout=10)
    semantic = Knowledge(backend, DocumentScope("acme", "prod"), embedder=embedder)
    for entry, text in HANDBOOK.items():
        await semantic.retrieval_store(text, entry_id=entry, namespace="handbook")

    firsts = {}
    for question in QUESTIONS:
        found = (await semantic.retrieval_query(question, namespace="handbook"))["results"]  # default min_score
        firsts[question] = found[0]["entry_id"]
    assert firsts == QUESTIONS

    # What lexical ranking finds for the same questions: not their passages.
    lexical = Knowledge(backend, DocumentScope("acme", "prod"))
    lexical_hits = 0
    for question, entry in QUESTIONS.items():
        found = (await lexical.retrieval_query(question, namespace="handbook"))["results"]
        lexical_hits += bool(found) and found[0]["entry_id"] == entry
    assert lexical_hits <= 1


async def test_vectors_are_unit_length_and_the_same_for_the_same_text() -> None:
    embedder = LocalEmbedder()
    texts = ["annual leave", "annual leave", *[f"passage {i}" for i in range(20)]]  # past the inline batch
    vectors = await embedder.embed("local/wordllama", texts, timeout=10)
    assert len(vectors) == len(texts) and {len(v) for v in vectors} == {256}
    assert vectors[0] == vectors[1]
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-3 for v in vectors)
    with pytest.raises(ConfigError, match="unknown local embedding model 'local/other'"):
        await embedder.embed("local/other", ["x"], timeout=10)


def test_the_local_model_is_the_default_and_none_means_lexical() -> None:
    assert KnowledgeConfig().embedding_model == "local/wordllama"
    assert KnowledgeConfig(embedding_model="none").embedding_model is None
    assert KnowledgeConfig.model_validate({"embedding_model": None}).embedding_model is None
    with pytest.raises(ValueError, match="unknown local embedding model 'local/minilm'"):
        KnowledgeConfig(embedding_model="local/minilm")


async def test_an_agent_with_no_knowledge_settings_ranks_by_meaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    answer = await desk_answer(tmp_path, monkeypatch, HANDBOOK, "where can I leave my bike")
    assert answer["results"][0]["entry_id"] == "parking"
