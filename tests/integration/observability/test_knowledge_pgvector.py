"""Knowledge vectors on PostgreSQL: in the pgvector column, nearest chunks found in SQL, each
tenant and namespace apart; where the database refuses the extension, blobs and ranking in
Python, moved into the column once pgvector arrives."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.compat.documents import DocumentScope
from app.compat.knowledge import Knowledge
from app.compat.passages import cosines
from app.devstack.llm_sim.embeddings import embed_text
from app.devstack.service import ServiceInfo
from app.observability.history.knowledge import SqlKnowledgeBackend

pytestmark = pytest.mark.integration

ACME, GLOBEX = DocumentScope("acme", "prod"), DocumentScope("globex", "prod")
PASSAGES = {
    "refunds": "Refunds for cars are paid within 14 days after the return.",
    "parking": "Parking is free for staff at weekends.",
    "canteen": "The canteen serves lunch from noon until two.",
}
QUESTION = "How do I get my money back for a vehicle?"  # no word in common with the refunds passage


class SimEmbedder:
    """The LLM simulator's vectors (related texts near), without its HTTP server."""

    model = "openai/sim-embed"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [embed_text(t) for t in texts]

    def score(self, cosine: float) -> float:
        return max(0.0, cosine)


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture
def pgvector(postgres: ServiceInfo) -> None:
    if not rows(postgres.address, "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"):
        pytest.skip("pgvector is not installed in this PostgreSQL (scripts/install-pgvector.sh)")


@pytest.fixture
def limited_url(postgres: ServiceInfo) -> Iterator[str]:
    """A database owned by a role that may not create extensions, as many users' databases are."""
    admin = make_url(postgres.address).render_as_string(hide_password=False)
    name = f"kb_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {name} LOGIN")
        connection.execute(f"CREATE DATABASE {name} OWNER {name}")
    yield make_url(postgres.address).set(username=name, database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"DROP ROLE IF EXISTS {name}")


async def store_all(kb: Knowledge, namespace: str = "policies") -> None:
    for entry, text in PASSAGES.items():
        await kb.retrieval_store(text, entry_id=entry, namespace=namespace)


async def test_vectors_live_in_pgvector_and_sql_finds_the_paraphrase(
    pgvector: None, postgres_url: Callable[[], str]
) -> None:
    url = postgres_url()
    backend = SqlKnowledgeBackend.for_history(url)
    try:
        acme = Knowledge(backend, ACME, embedder=SimEmbedder())
        await store_all(acme)
        await store_all(acme, namespace="archive")  # the same passages elsewhere: not asked for
        await Knowledge(backend, GLOBEX, embedder=SimEmbedder()).retrieval_store(QUESTION, entry_id="globex-refunds")

        [wanted] = await SimEmbedder().embed([QUESTION])
        nearest = await backend.nearest(ACME, "policies", wanted, SimEmbedder.model, 2)
        assert nearest is not None, "ranked in Python although the database has pgvector"
        # SQL's order and scores are the cosine similarities Python would compute.
        in_python = sorted(
            zip(cosines(wanted, [embed_text(t) for t in PASSAGES.values()]), PASSAGES, strict=True), reverse=True
        )[:2]
        assert [(c.namespace, c.entry_id) for c, _ in nearest] == [("policies", e) for _, e in in_python]
        assert [s for _, s in nearest] == pytest.approx([s for s, _ in in_python], abs=1e-5)
        assert nearest[0][0].entry_id == "refunds"
        assert await backend.nearest(ACME, "policies", wanted, "openai/another-model", 2) == []

        found = (await acme.retrieval_query(QUESTION, namespace="policies", min_score=0.0))["results"]
        assert [(r["namespace"], r["entry_id"]) for r in found][:1] == [("policies", "refunds")]
        assert {r["namespace"] for r in found} == {"policies"}
        assert "globex-refunds" not in {r["entry_id"] for r in found}
    finally:
        backend.close()
    stored = rows(url, "SELECT embedding_vector IS NOT NULL, embedding IS NULL, embedding_model FROM ferry_knowledge")
    assert len(stored) == 7 and set(stored) == {(True, True, SimEmbedder.model)}


async def test_without_the_right_to_create_pgvector_blobs_rank_in_python_until_it_arrives(
    pgvector: None, postgres: ServiceInfo, limited_url: str
) -> None:
    backend = SqlKnowledgeBackend.for_history(limited_url)
    try:
        kb = Knowledge(backend, ACME, embedder=SimEmbedder())
        await store_all(kb)
        [wanted] = await SimEmbedder().embed([QUESTION])
        assert await backend.nearest(ACME, None, wanted, SimEmbedder.model, 3) is None
        assert (await kb.retrieval_query(QUESTION))["results"][0]["entry_id"] == "refunds"
    finally:
        backend.close()
    assert rows(limited_url, "SELECT count(*) FROM ferry_knowledge WHERE embedding IS NOT NULL") == [(3,)]

    # An administrator adds pgvector; the next store puts the stored vectors in the column.
    admin = make_url(postgres.address).set(database=make_url(limited_url).database)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
        connection.execute("CREATE EXTENSION vector")
    backend = SqlKnowledgeBackend.for_history(limited_url)
    try:
        nearest = await backend.nearest(ACME, None, wanted, SimEmbedder.model, 3)
        assert nearest is not None and nearest[0][0].entry_id == "refunds"
        found = (await Knowledge(backend, ACME, embedder=SimEmbedder()).retrieval_query(QUESTION))["results"]
        assert found[0]["entry_id"] == "refunds"
    finally:
        backend.close()
    stored = rows(limited_url, "SELECT embedding_vector IS NOT NULL, embedding IS NULL FROM ferry_knowledge")
    assert stored == [(True, True)] * 3


async def test_sql_ranking_looks_past_the_chunks_a_filter_hides(
    pgvector: None, postgres_url: Callable[[], str]
) -> None:
    backend = SqlKnowledgeBackend.for_history(postgres_url())
    try:
        kb = Knowledge(backend, ACME, embedder=SimEmbedder())
        for entry, text in PASSAGES.items():
            await kb.retrieval_store(text, entry_id=entry, namespace="policies", metadata={"lang": "en"})
        await kb.retrieval_store(QUESTION, entry_id="nearest-but-german", namespace="policies", metadata={"lang": "de"})
        found = await kb.retrieval_query(QUESTION, max_results=1, metadata_filter={"lang": "en"})
        assert [r["entry_id"] for r in found["results"]] == ["refunds"]
    finally:
        backend.close()
