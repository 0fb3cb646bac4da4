"""A knowledge query over a namespace of N chunks: ranked in Python (SQLite, or PostgreSQL
without pgvector) against ranked in SQL (PostgreSQL with pgvector), the default local
embedding model throughout.

Stores N chunk-sized passages in one namespace of each store, then times `retrieval_query`
(the question embedded, the chunks read, ranked, the best 3 returned), median of 20.

    .venv/bin/python bench/bench_knowledge.py --postgres postgresql://ferry@127.0.0.1:PORT/ferry [--chunks 2000]

The PostgreSQL must have pgvector available (scripts/install-pgvector.sh; the dev stack
creates the extension): the bench makes a second database without it for the Python side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.compat.documents import DocumentScope
from app.compat.knowledge import Knowledge
from app.engine.embeddings import ModelEmbeddings
from app.observability.history.knowledge import SqlKnowledgeBackend
from tests.unit.compat.test_knowledge_local import HANDBOOK

MODEL = "local/wordllama"
SCOPE = DocumentScope("acme", "prod")


def passage(i: int) -> str:
    words = list(HANDBOOK.values())[i % len(HANDBOOK)].split()
    return f"Clause {i}. " + " ".join(words[i % 7 :] + words[: i % 7]) * 3


async def timed_queries(backend: SqlKnowledgeBackend, embedder: ModelEmbeddings, chunks: int) -> float:
    knowledge = Knowledge(backend, SCOPE, embedder=embedder)
    texts = [passage(i) for i in range(chunks)]
    for start in range(0, chunks, 100):  # one entry per chunk, stored 100 at a time
        await asyncio.gather(
            *(
                knowledge.retrieval_store(t, entry_id=f"e{start + k}", namespace="handbook")
                for k, t in enumerate(texts[start : start + 100])
            )
        )
    await knowledge.retrieval_query("warm up", namespace="handbook")
    times = []
    for question in ["where can I leave my bike", "payment deadline for bills"] * 10:
        started = time.perf_counter()
        found = await knowledge.retrieval_query(question, namespace="handbook")
        times.append(time.perf_counter() - started)
        assert found["results"], question
    return statistics.median(times) * 1000


def without_pgvector(admin_url: str) -> str:
    """A database owned by a role that may not create extensions, as many users' databases are."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {name} LOGIN")
        connection.execute(f"CREATE DATABASE {name} OWNER {name}")
    return make_url(admin_url).set(username=name, database=name).render_as_string(hide_password=False)


async def main(postgres: str, chunks: int) -> None:
    embedder = ModelEmbeddings.local(MODEL, timeout=30)
    print(f"{chunks} chunks in one namespace, {MODEL}; load {os.getloadavg()[0]:.1f}")
    with TemporaryDirectory() as folder:
        sides = {
            "SQLite, ranked in Python": f"sqlite:///{folder}/history.db",
            "PostgreSQL without pgvector, in Python": without_pgvector(postgres),
            "PostgreSQL with pgvector, in SQL": postgres,
        }
        for side, url in sides.items():
            backend = SqlKnowledgeBackend.for_history(url)
            try:
                print(f"  {side:42s} query p50 {await timed_queries(backend, embedder, chunks):7.1f} ms")
            finally:
                backend.close()
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, help="a PostgreSQL URL with pgvector available")
    parser.add_argument("--chunks", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.postgres, arguments.chunks))
