"""The knowledge tools on SQLite: namespaces, chunking, metadata filters, deletes, and
retrieval that puts the right passage first on documents the test writes."""

from __future__ import annotations

import asyncio

import pytest

from app.compat.documents import DocumentScope
from app.compat.knowledge import Knowledge
from app.compat.passages import chunk
from app.contracts.errors import ToolError
from app.observability.history.knowledge import SqlKnowledgeBackend
from app.project.models import RetrievalAccessSpec

POLICIES = {
    ("refunds", "policies.refunds"): "Refunds are paid back to the original card within 14 days after we receive "
    "the returned item. Items must be unused.",
    ("shipping", "policies.shipping"): "Standard shipping takes 3 to 5 working days. Express shipping arrives the "
    "next working day when ordered before noon.",
    ("warranty", "policies.warranty"): "Every device has a two year warranty covering manufacturing faults, not "
    "accidental damage.",
    ("opening", "faq"): "Our support desk is open Monday to Friday from 9 to 17 o'clock.",
}


@pytest.fixture
def kb(backend: SqlKnowledgeBackend) -> Knowledge:
    knowledge = Knowledge(backend, DocumentScope("acme", "prod"))
    for (entry, namespace), text in POLICIES.items():
        asyncio.run(knowledge.retrieval_store(text, entry_id=entry, namespace=namespace, metadata={"lang": "en"}))
    return knowledge


QUESTIONS = [
    ("How long do refunds take?", "refunds"),
    ("When does express shipping arrive?", "shipping"),
    ("Is accidental damage covered by the warranty?", "warranty"),
    ("What are the support desk opening hours?", "opening"),
]


@pytest.mark.parametrize(("question", "entry"), QUESTIONS, ids=[e for _, e in QUESTIONS])
def test_the_passage_that_answers_comes_first(kb: Knowledge, question: str, entry: str) -> None:
    found = asyncio.run(kb.retrieval_query(question, min_score=0.0, max_results=4))["results"]
    assert found[0]["entry_id"] == entry
    assert found[0]["score"] > found[1]["score"]


def test_min_score_namespaces_and_metadata_narrow_the_results(kb: Knowledge) -> None:
    results = asyncio.run(kb.retrieval_query("refunds card"))["results"]  # min_score 0.3, max 3
    assert [r["entry_id"] for r in results] == ["refunds"]
    assert results[0]["namespace"] == "policies.refunds" and results[0]["metadata"] == {"lang": "en"}
    in_policies = asyncio.run(kb.retrieval_query("days", namespace="policies", min_score=0.1))["results"]
    assert {r["entry_id"] for r in in_policies} == {"refunds", "shipping"}  # sub-namespaces included
    assert asyncio.run(kb.retrieval_query("days", metadata_filter={"lang": "de"}, min_score=0.0)) == {"results": []}


def test_a_long_entry_is_chunked_and_the_matching_chunk_is_returned(kb: Knowledge) -> None:
    filler = " ".join(f"Paragraph {i} talks about the history of the company and its founders." for i in range(30))
    text = filler + "\n\nThe loyalty programme gives one point per euro spent.\n\n" + filler
    stored = asyncio.run(kb.retrieval_store(text, entry_id="handbook", namespace="handbook"))
    assert stored["chunk_count"] == len(chunk(text)) > 3
    (hit,) = asyncio.run(kb.retrieval_query("loyalty points per euro", max_results=1))["results"]
    assert hit["entry_id"] == "handbook" and "loyalty programme" in hit["content"]


def test_storing_an_entry_again_replaces_it_and_deletes_scope_to_the_namespace(kb: Knowledge) -> None:
    asyncio.run(kb.retrieval_store("Refunds now take 30 days.", entry_id="refunds", namespace="policies.refunds"))
    (hit,) = asyncio.run(kb.retrieval_query("refunds", namespace="policies.refunds"))["results"]
    assert hit["content"] == "Refunds now take 30 days."
    assert asyncio.run(kb.retrieval_delete(namespace="policies", metadata_filter={"lang": "en"})) == {
        "ok": True,
        "deleted_chunks": 2,  # shipping and warranty: the new refunds entry has no metadata
    }
    assert asyncio.run(kb.retrieval_delete(entry_id="refunds")) == {"ok": True, "deleted_chunks": 1}
    assert asyncio.run(kb.retrieval_query("shipping warranty refunds", min_score=0.0))["results"][0]["entry_id"] == (
        "opening"
    )
    with pytest.raises(ToolError, match="metadata_filter needs a namespace"):
        asyncio.run(kb.retrieval_delete(metadata_filter={"lang": "en"}))


def test_namespaces_are_listed_with_their_counts(kb: Knowledge) -> None:
    top = asyncio.run(kb.retrieval_list_namespaces())
    assert top == [
        {"name": "faq", "entry_count": 1, "total_entry_count": 1, "has_children": False},
        {"name": "policies", "entry_count": 0, "total_entry_count": 3, "has_children": True},
    ]
    below = asyncio.run(kb.retrieval_list_namespaces(parent="policies"))
    assert below["parent"]["total_entry_count"] == 3
    assert [n["name"] for n in below["namespaces"]] == ["policies.refunds", "policies.shipping", "policies.warranty"]


def test_another_tenant_sees_nothing(kb: Knowledge, backend: SqlKnowledgeBackend) -> None:
    other = Knowledge(backend, DocumentScope("globex", "prod"))
    assert asyncio.run(other.retrieval_query("refunds", min_score=0.0)) == {"results": []}
    assert asyncio.run(other.retrieval_list_namespaces()) == []
    assert asyncio.run(other.retrieval_delete(namespace="policies")) == {"ok": True, "deleted_chunks": 0}
    assert len(asyncio.run(kb.retrieval_query("refunds", min_score=0.0))["results"]) == 3


def test_an_agents_retrieval_rules_bind_its_knowledge_calls(kb: Knowledge, backend: SqlKnowledgeBackend) -> None:
    rules = RetrievalAccessSpec.model_validate(
        {"prevent_write": True, "namespaces": {"policies": {}, "policies.shipping": {"prevent_write": False}}}
    )
    limited = Knowledge(backend, DocumentScope("acme", "prod"), access=rules, agent="faq-bot")
    found = asyncio.run(limited.retrieval_query("support desk refunds days", min_score=0.0, max_results=10))
    assert {r["entry_id"] for r in found["results"]} == {"refunds", "shipping", "warranty"}  # not faq
    assert [n["name"] for n in asyncio.run(limited.retrieval_list_namespaces())] == ["policies"]
    stored = asyncio.run(limited.retrieval_store("Free shipping above 50 euros.", namespace="policies.shipping"))
    assert stored["success"] is True  # the closest namespace's override allows writing there
    refusals = [
        (limited.retrieval_store("x", namespace="policies.refunds"), "retrieval_store: agent 'faq-bot' may not "
         "change 'policies.refunds' (prevent_write)"),
        (limited.retrieval_query("hours", namespace="faq"), "retrieval_query: namespace 'faq' is not among the "
         "namespaces agent 'faq-bot' may use (policies, policies.shipping)"),
    ]  # fmt: skip
    for call, message in refusals:
        with pytest.raises(ToolError) as refused:
            asyncio.run(call)
        assert refused.value.message == message
