"""The Connic stores (documents, knowledge, sessions) on SQLite and on PostgreSQL (JSONB):
the same answers on both, each tenant in its own scope."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, inspect

from app.compat.documents import Documents, DocumentScope
from app.compat.knowledge import Knowledge
from app.observability.history.documents import SqlDocumentBackend
from app.observability.history.knowledge import SqlKnowledgeBackend
from app.observability.history.sessions import SqlSessionStore

pytestmark = pytest.mark.integration

ACME, GLOBEX = DocumentScope("acme", "prod"), DocumentScope("globex", "prod")


async def test_documents_filters_and_scopes(store_url: Callable[[], str]) -> None:
    url = store_url()
    backend = SqlDocumentBackend.for_history(url)
    try:
        db = Documents(backend, ACME, {})
        await db.db_insert(
            "orders",
            [
                {"order_id": "A", "total": 10, "tags": ["eu"], "customer": {"tier": "gold"}},
                {"order_id": "B", "total": 25.5, "tags": [], "customer": {"tier": "basic"}},
            ],
        )
        found = await db.db_find(
            "orders", {"$or": [{"customer.tier": "gold"}, {"total": {"$gt": 20}}]}, sort={"total": -1}
        )
        assert [d["order_id"] for d in found["documents"]] == ["B", "A"]
        assert await db.db_upsert("orders", {"order_id": "A"}, {"total": 11}) == {
            "upserted_id": found["documents"][1]["_id"],
            "operation": "updated",
        }
        assert (await db.db_find("orders", {"total": 11}))["count"] == 1
        assert await Documents(backend, GLOBEX, {}).db_count("orders") == {"count": 0}
        listed = await db.db_list_collections()
        assert listed["collections"][0]["document_count"] == 2 and listed["collections"][0]["size_bytes"] > 0
    finally:
        backend.close()
    if url.startswith("postgresql"):
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("ferry_documents")}
        engine.dispose()
        assert type(columns["data"]).__name__ == "JSONB"


async def test_knowledge_and_sessions(store_url: Callable[[], str]) -> None:
    url = store_url()
    knowledge, sessions = SqlKnowledgeBackend.for_history(url), SqlSessionStore.for_history(url)
    try:
        kb = Knowledge(knowledge, ACME)
        await kb.retrieval_store(
            "Refunds reach the card within 14 days.", entry_id="refunds", namespace="policies.money"
        )
        await kb.retrieval_store("Parcels ship in 3 days.", entry_id="shipping", namespace="policies")
        hits = (await kb.retrieval_query("how long until refunds reach my card", namespace="policies"))["results"]
        assert [h["entry_id"] for h in hits] == ["refunds"]
        assert (await Knowledge(knowledge, GLOBEX).retrieval_query("refunds", min_score=0.0))["results"] == []

        turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
        await sessions.append(ACME, "desk", "chat-1", turns, None)
        await sessions.append(ACME, "desk", "chat-1", turns, None)
        assert len(await sessions.load(ACME, "desk", "chat-1", None)) == 4
        assert await sessions.load(GLOBEX, "desk", "chat-1", None) == []
        assert await sessions.load(ACME, "desk", "chat-1", timedelta(seconds=-1)) == []  # expired
    finally:
        knowledge.close()
        sessions.close()
