"""Passages: how stored text is cut into chunks, and how chunks are scored against a query
(`LexicalRetriever`, the share of the query's rare words a chunk holds; `cosines`, the
similarity of embeddings). What is scored is the knowledge tools' concern (knowledge.py).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

CHUNK_CHARS = 800
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


@dataclass(frozen=True)
class Chunk:
    entry_id: str
    namespace: str  # "" for no namespace
    index: int
    content: str
    metadata: dict[str, Any]
    vector: tuple[float, ...] | None = field(default=None, repr=False)  # its embedding, when it has one
    vector_model: str | None = None  # the model that embedded it


class Retriever(Protocol):
    def scores(self, query: str, chunks: Sequence[Chunk]) -> list[float]:
        """A score in [0, 1] per chunk, higher is more relevant."""
        ...


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def terms(text: str) -> list[str]:
    return [_stem(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOP_WORDS]


class LexicalRetriever:
    """The share of the query's idf-weighted terms a chunk contains (see the module docstring)."""

    def scores(self, query: str, chunks: Sequence[Chunk]) -> list[float]:
        wanted = set(terms(query))
        if not wanted or not chunks:
            return [0.0] * len(chunks)
        bags = [Counter(terms(chunk.content)) for chunk in chunks]
        df = Counter(term for bag in bags for term in wanted & bag.keys())
        idf = {term: math.log(1 + (len(chunks) + 1) / (df[term] + 0.5)) for term in wanted}
        total = sum(idf.values())
        found = []
        for bag in bags:
            covered = sum(idf[t] for t in wanted if t in bag)
            density = sum(min(bag[t], 3) for t in wanted if t in bag) / (3 * len(wanted))  # breaks ties
            found.append(min(1.0, covered / total) * 0.95 + 0.05 * density)
        return found


def cosines(query: Sequence[float], vectors: Sequence[Sequence[float] | None]) -> list[float]:
    """The cosine similarity of `query` with each vector (0 for none, a zero vector or another
    size): one matrix product, as a namespace may hold thousands of chunks."""
    if not vectors:
        return []
    import numpy  # here, not at the top: ~16 MiB a worker that never ranks in Python does not pay

    wanted = numpy.asarray(query, dtype=numpy.float32)
    sized = [i for i, v in enumerate(vectors) if v is not None and len(v) == len(wanted)]
    similarities = [0.0] * len(vectors)
    if sized and wanted.any():
        matrix = numpy.asarray([vectors[i] for i in sized], dtype=numpy.float32)
        norms = numpy.linalg.norm(matrix, axis=1) * numpy.linalg.norm(wanted)
        products = matrix @ wanted
        for i, product, norm in zip(sized, products.tolist(), norms.tolist(), strict=True):
            similarities[i] = product / norm if norm else 0.0
    return similarities


def chunk(content: str, size: int = CHUNK_CHARS) -> list[str]:
    """Paragraphs packed into chunks of about `size` characters; a long paragraph is split
    by sentences, and each chunk after the first starts with the previous one's last sentence."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", content.strip()):
        sentences.extend(s.strip() for s in _SENTENCE.split(paragraph.strip()) if s.strip())
    chunks: list[list[str]] = [[]]
    for sentence in sentences:
        current = chunks[-1]
        if current and sum(len(s) + 1 for s in current) + len(sentence) > size:
            chunks.append([current[-1], sentence] if len(current) > 1 else [sentence])
        else:
            current.append(sentence)
    return [" ".join(c) for c in chunks if c] or ([content] if content else [])
