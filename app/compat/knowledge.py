"""The knowledge tools (`retrieval_*`, and the aliases `query_knowledge`, `store_knowledge`,
`delete_knowledge`, `kb_list_namespaces`): text stored in namespaces, found again by query.

Stored content is split into chunks (passages.py `chunk`: paragraphs, then sentences, about 800
characters with a sentence of overlap) and kept per tenant and environment in the
run-history database (app/observability/history/knowledge.py). Namespaces are dotted
(`policies.hr.leave`); a query or delete in a namespace covers its sub-namespaces.

Ranking is semantic when the project configures an embedding model (`knowledge:
embedding_model` in ferry.yaml; the engine hands over a `TextEmbedder`): each chunk is
embedded when stored, its vector kept beside it, and a query's score against a chunk is
the cosine similarity of their vectors as the model scores it (`TextEmbedder.score`: below 0
counts as 0; the default local model's compressed range is stretched). Chunks stored before the
model was configured, or embedded by another model, are embedded on the first query
that meets them and their vectors stored then. A failing embedding call is the tool's
error; nothing falls back silently to another ranking.

Without an embedding model, ranking is a `Retriever`, lexical (`LexicalRetriever`): a
chunk's score is the share of the query's terms it contains, each term weighted by how
rare it is among the chunks searched (idf), so 1.0 means every query word is there and
the SDK's `min_score` keeps its meaning of "how much of what I asked for is in this
passage". It finds passages that share the query's words (and word stems: `refunds`
finds `refund`), not paraphrases.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from app.compat.documents import DocumentScope
from app.compat.filters import filter_error, matches
from app.compat.passages import Chunk, LexicalRetriever, Retriever, chunk, cosines
from app.contracts.errors import FerryError, ToolError

_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class TextEmbedder(Protocol):
    """The project's embedding model (app/engine/embeddings.py `ModelEmbeddings`)."""

    @property
    def model(self) -> str: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raises a `FerryError` when the model fails."""
        ...

    def score(self, cosine: float) -> float:
        """A passage's score in [0, 1] from its cosine similarity to the query (models differ in range)."""
        ...


class KnowledgeBackend(Protocol):
    async def replace_entry(self, scope: DocumentScope, namespace: str, entry_id: str, chunks: Sequence[Chunk]) -> None:
        """Store an entry's chunks, replacing the entry's earlier ones in that namespace."""
        ...

    async def chunks(self, scope: DocumentScope, namespace: str | None, *, vectors: bool = True) -> list[Chunk]:
        """Every chunk in `namespace` and its sub-namespaces (None: all of the scope); without
        `vectors`, their `vector` is None (their `vector_model` still says whether they have one)."""
        ...

    async def unembedded(self, scope: DocumentScope, namespace: str | None, model: str) -> list[Chunk]:
        """The chunks of `namespace` (as `chunks`) with no vector of `model`, without vectors."""
        ...

    async def delete(self, scope: DocumentScope, keys: Sequence[tuple[str, str]]) -> int:
        """Delete the entries (namespace, entry_id); the number of chunks deleted."""
        ...

    async def set_vectors(self, scope: DocumentScope, chunks: Sequence[Chunk]) -> None:
        """Store the `vector` and `vector_model` of chunks already stored (found by their keys)."""
        ...

    async def nearest(
        self, scope: DocumentScope, namespace: str | None, vector: Sequence[float], model: str, limit: int
    ) -> list[tuple[Chunk, float]] | None:
        """The `limit` chunks embedded by `model` nearest to `vector` (in `namespace` and below,
        None: all), nearest first, each with its cosine similarity; their vectors are not loaded.
        None when this backend cannot rank (then `Knowledge` ranks in Python)."""
        ...


def _namespace(value: str | None, tool: str) -> str:
    if value is None or value == "":
        return ""
    if not _NAMESPACE.match(value):
        raise ToolError(f"{tool}: namespace {value!r} must be names separated by dots (e.g. policies.hr)", tool)
    return value


def _key(chunk: Chunk) -> tuple[str, str, int]:
    return chunk.namespace, chunk.entry_id, chunk.index


def _within(namespace: str, parent: str) -> bool:
    return not parent or namespace == parent or namespace.startswith(parent + ".")


class NamespaceAccess(Protocol):
    """An agent's `retrieval` rules (app.project.models.RetrievalAccessSpec)."""

    @property
    def namespaces(self) -> Mapping[str, Any] | None: ...

    @property
    def prevent_delete(self) -> bool: ...

    @property
    def prevent_write(self) -> bool: ...


class Knowledge:
    """The knowledge tools of one run, bound to its scope and its agent's access rules."""

    def __init__(
        self,
        backend: KnowledgeBackend,
        scope: DocumentScope,
        retriever: Retriever | None = None,
        access: NamespaceAccess | None = None,
        agent: str = "",
        embedder: TextEmbedder | None = None,
    ) -> None:
        """`embedder`: rank by embeddings (None: by `retriever`, lexical by default)."""
        self.backend = backend
        self.scope = scope
        self.retriever = retriever or LexicalRetriever()
        self.embedder = embedder
        self._access = access
        self._agent = agent

    def _visible(self, namespace: str) -> bool:
        listed = self._access.namespaces if self._access is not None else None
        return listed is None or any(_within(namespace, allowed) for allowed in listed)

    def _allowed(self, tool: str, namespace: str, *, write: bool = False, delete: bool = False) -> None:
        """Raise the tool error saying why, unless this agent may use `namespace` so."""
        access = self._access
        if access is None:
            return
        listed = access.namespaces
        if listed is not None and not (namespace and self._visible(namespace)):
            raise ToolError(
                f"{tool}: namespace {namespace or '(none)'!r} is not among the namespaces agent {self._agent!r} "
                f"may use ({', '.join(sorted(listed)) or 'none'})",
                tool,
            )
        closest = max((n for n in (listed or {}) if _within(namespace, n)), key=len, default=None)
        override = listed.get(closest) if listed is not None and closest is not None else None
        for wanted, flag_name in ((write, "prevent_write"), (delete, "prevent_delete")):
            if not wanted:
                continue
            flag = getattr(override, flag_name, None)
            if flag if flag is not None else getattr(access, flag_name):
                raise ToolError(f"{tool}: agent {self._agent!r} may not change {namespace!r} ({flag_name})", tool)

    async def retrieval_store(
        self,
        content: str,
        entry_id: str | None = None,
        namespace: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not isinstance(content, str) or not content.strip():
            raise ToolError("retrieval_store needs non-empty text content", "retrieval_store")
        space = _namespace(namespace, "retrieval_store")
        self._allowed("retrieval_store", space, write=True)
        entry = str(entry_id) if entry_id else str(uuid.uuid4())
        pieces = chunk(content)
        chunks = [Chunk(entry, space, i, text, dict(metadata or {})) for i, text in enumerate(pieces)]
        chunks = await self._embedded(chunks, "retrieval_store")
        await self.backend.replace_entry(self.scope, space, entry, chunks)
        return {"entry_id": entry, "chunk_count": len(chunks), "success": True}

    async def retrieval_query(
        self,
        query: str,
        namespace: str | None = None,
        min_score: float = 0.3,
        max_results: int = 3,
        metadata_filter: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        space = _namespace(namespace, "retrieval_query")
        if space:
            self._allowed("retrieval_query", space)
        limit = max(0, int(max_results))
        scored = await self._ranked(
            query, space, limit, lambda c: self._visible(c.namespace) and matches(c.metadata, metadata_filter)
        )
        results = [
            {
                "content": c.content,
                "entry_id": c.entry_id,
                "namespace": c.namespace or None,
                "score": round(score, 4),
                "metadata": c.metadata,
            }
            for score, c in scored
            if score >= min_score
        ]
        return {"results": results[:limit]}

    async def _vectors(self, texts: Sequence[str], tool: str) -> list[list[float]]:
        assert self.embedder is not None
        try:
            vectors = await self.embedder.embed(texts)
        except FerryError as exc:
            raise ToolError(f"{tool}: the embedding model {self.embedder.model} failed: {exc}", tool) from exc
        if len(vectors) != len(texts):
            raise ToolError(f"{tool}: the embedding model {self.embedder.model} gave {len(vectors)} vectors", tool)
        return vectors

    async def _embedded(self, chunks: list[Chunk], tool: str) -> list[Chunk]:
        """`chunks` with their vectors, when there is an embedding model."""
        if self.embedder is None or not chunks:
            return chunks
        vectors = await self._vectors([c.content for c in chunks], tool)
        model = self.embedder.model
        return [replace(c, vector=tuple(v), vector_model=model) for c, v in zip(chunks, vectors, strict=True)]

    async def _ranked(
        self, query: str, space: str, limit: int, shown: Callable[[Chunk], bool]
    ) -> list[tuple[float, Chunk]]:
        """(score, chunk) of the chunks `shown`, best first: the best `limit` when the database
        ranks them (`nearest`), all of them when they are ranked here."""
        if self.embedder is None:
            candidates = [c for c in await self.backend.chunks(self.scope, space or None, vectors=False) if shown(c)]
            scores = self.retriever.scores(query, candidates)
        elif not query.strip():
            return []
        else:
            model = self.embedder.model
            stale = await self.backend.unembedded(self.scope, space or None, model)
            if stale:  # stored before this model was configured: embedded now, once
                await self.backend.set_vectors(self.scope, await self._embedded(stale, "retrieval_query"))
            [wanted] = await self._vectors([query], "retrieval_query")
            near = await self._nearest(wanted, space, limit, shown)
            if near is not None:
                return near
            candidates = [c for c in await self.backend.chunks(self.scope, space or None) if shown(c)]
            scores = [self.embedder.score(similarity) for similarity in cosines(wanted, [c.vector for c in candidates])]
        return sorted(
            zip(scores, candidates, strict=True), key=lambda pair: (-pair[0], pair[1].entry_id, pair[1].index)
        )

    async def _nearest(
        self, wanted: list[float], space: str, limit: int, shown: Callable[[Chunk], bool]
    ) -> list[tuple[float, Chunk]] | None:
        """The best `limit` chunks shown, ranked by the database (None: it cannot). The nearest
        ones may be hidden (namespace rules, metadata filter): asked again for more until
        `limit` are shown or there are no more."""
        assert self.embedder is not None
        asked = max(4 * limit, 16)
        while True:
            near = await self.backend.nearest(self.scope, space or None, wanted, self.embedder.model, asked)
            if near is None:
                return None
            kept = [(self.embedder.score(similarity), c) for c, similarity in near if shown(c)]
            if len(kept) >= limit or len(near) < asked:
                return kept
            asked *= 4

    async def retrieval_delete(
        self,
        entry_id: str | None = None,
        namespace: str | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        space = _namespace(namespace, "retrieval_delete")
        if metadata_filter and not space:
            raise filter_error("retrieval_delete: metadata_filter needs a namespace")
        if entry_id is None and not space:
            raise ToolError("retrieval_delete needs an entry_id or a namespace", "retrieval_delete")
        found = await self.backend.chunks(self.scope, space or None, vectors=False)
        keys = {
            (c.namespace, c.entry_id)
            for c in found
            if self._visible(c.namespace)
            and (entry_id is None or c.entry_id == entry_id)
            and matches(c.metadata, metadata_filter)
        }
        for touched in sorted({ns for ns, _ in keys} or ({space} if space else set())):
            self._allowed("retrieval_delete", touched, delete=True)
        deleted = await self.backend.delete(self.scope, sorted(keys))
        return {"ok": True, "deleted_chunks": deleted}

    async def retrieval_list_namespaces(self, parent: str | None = None, depth: int = 1) -> Any:
        base = _namespace(parent, "retrieval_list_namespaces")
        if not 0 <= int(depth) <= 10:
            raise ToolError("depth must be 0 (all) to 10", "retrieval_list_namespaces")
        entries: dict[str, set[str]] = {}
        for c in await self.backend.chunks(self.scope, base or None, vectors=False):
            if self._visible(c.namespace):
                entries.setdefault(c.namespace, set()).add(c.entry_id)
        names = {n for n in entries if n}
        for name in list(names):  # every ancestor of a namespace is a namespace too
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts)))
        offset = len(base.split(".")) if base else 0

        def info(name: str) -> dict[str, Any]:
            below = [n for n in entries if _within(n, name)]
            return {
                "name": name,
                "entry_count": len(entries.get(name, ())),
                "total_entry_count": sum(len(entries[n]) for n in below),
                "has_children": any(n != name and _within(n, name) for n in names),
            }

        listed = [
            info(name)
            for name in sorted(names)
            if _within(name, base) and name != base and (depth == 0 or len(name.split(".")) - offset <= depth)
        ]
        if not base:
            return listed
        return {"parent": info(base), "namespaces": listed}

    def implementations(self) -> dict[str, Any]:
        return {
            "retrieval_query": self.retrieval_query,
            "retrieval_store": self.retrieval_store,
            "retrieval_delete": self.retrieval_delete,
            "retrieval_list_namespaces": self.retrieval_list_namespaces,
        }
