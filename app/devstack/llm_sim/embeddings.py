"""The simulator's `/v1/embeddings`: deterministic vectors in which related texts are near.

A text's vector is a hashed bag of its words (`DIMENSIONS` buckets, a sign per word,
L2-normalised), so texts that share words point the same way. Two things make it a
stand-in for a real model rather than a word matcher, so tests can tell semantic search
from lexical search:

- **concepts**: the words of each group in `CONCEPTS` (`refund`, `reimbursement`,
  `money back`, …) hash as one token, so a paraphrase with none of the query's words
  still lands near it;
- **word shapes**: each word also adds its character trigrams at a lower weight, so
  `reimbursed` is near `reimbursement`.

Stop words count for nothing. Same text, same vector, on every machine.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from app.compat.passages import STOP_WORDS

DIMENSIONS = 256
TRIGRAM_WEIGHT = 0.3
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = STOP_WORDS | frozenset(["get", "got"])  # plus verbs the tests' questions use ("how do I get …")

#: Words and phrases that mean one thing, for the tests' texts (lowercase; phrases first).
CONCEPTS: tuple[tuple[str, ...], ...] = (
    ("refund", "refunds", "refunded", "reimbursement", "reimburse", "reimbursed", "money back", "repay", "repaid"),
    ("car", "cars", "vehicle", "vehicles", "automobile", "automobiles"),
    ("holiday", "holidays", "vacation", "vacations", "annual leave", "time off", "days off"),
    ("cancel", "cancellation", "cancelled", "terminate", "termination", "end the contract"),
    ("price", "prices", "cost", "costs", "fee", "fees", "charge", "charges"),
    ("broken", "damaged", "defective", "faulty", "not working"),
    ("delivery", "deliveries", "shipping", "shipment", "dispatch"),
    ("employee", "employees", "staff", "worker", "workers", "personnel"),
    ("sick", "ill", "illness", "sickness", "unwell"),
    ("password", "passwords", "credentials", "login details"),
)
_CONCEPT_OF = {term: f"concept:{group[0]}" for group in CONCEPTS for term in group}
_PHRASES = sorted((t for t in _CONCEPT_OF if " " in t), key=len, reverse=True)


def _tokens(text: str) -> Iterator[tuple[str, float]]:
    lowered = " ".join(m.group(0) for m in _WORD.finditer(text.lower()))
    for phrase in _PHRASES:
        pattern = rf"\b{re.escape(phrase)}\b"
        for _ in re.finditer(pattern, lowered):
            yield _CONCEPT_OF[phrase], 1.0
        lowered = re.sub(pattern, " ", lowered)
    for word in lowered.split():
        if word in _STOP:
            continue
        concept = _CONCEPT_OF.get(word)
        if concept is not None:
            yield concept, 1.0
            continue
        yield f"word:{word}", 1.0
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            yield f"tri:{padded[i : i + 3]}", TRIGRAM_WEIGHT


def embed_text(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for token, weight in _tokens(text):
        digest = hashlib.sha256(token.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % DIMENSIONS
        vector[index] += weight if digest[4] & 1 else -weight
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def embeddings_answer(model: str, texts: Sequence[str]) -> dict[str, Any]:
    """The body of an OpenAI embeddings answer; usage counts words, as the chat route does."""
    data = [{"object": "embedding", "index": i, "embedding": embed_text(t)} for i, t in enumerate(texts)]
    tokens = sum(len(t.split()) for t in texts)
    return {"object": "list", "model": model, "data": data, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
