"""What the default embedding model (`local/wordllama`) costs a worker, and what it finds.

Prints: import + load time, the process's RSS before and after loading, the time to
embed passages (one at a time, as a query is, and in batches of 64, as a stored
document is), and top-1 accuracy on the handbook of tests/unit/compat/test_knowledge_local.py
for the local model and for lexical ranking.

    .venv/bin/python bench/bench_embeddings.py [--passages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.compat.passages import Chunk, LexicalRetriever
from app.engine.local_embeddings import LocalEmbedder
from tests.unit.compat.test_knowledge_local import HANDBOOK, QUESTIONS

MODEL = "local/wordllama"


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def passage(i: int) -> str:
    words = list(HANDBOOK.values())[i % len(HANDBOOK)].split()
    return " ".join(words[i % 5 :] + words[: i % 5]) * 4  # ~400-600 characters, like a chunk


async def main(passages: int) -> None:
    embedder = LocalEmbedder()
    before = rss_mib()
    started = time.perf_counter()
    await embedder.embed(MODEL, ["warm up"], timeout=30)
    loaded = time.perf_counter() - started
    after = rss_mib()
    print(f"load (import + weights + tokenizer): {loaded * 1000:.0f} ms; RSS {before:.0f} → {after:.0f} MiB")

    texts = [passage(i) for i in range(passages)]
    started = time.perf_counter()
    for text in texts[:500]:
        await embedder.embed(MODEL, [text], timeout=30)
    single = (time.perf_counter() - started) / 500
    started = time.perf_counter()
    for start in range(0, len(texts), 64):
        await embedder.embed(MODEL, texts[start : start + 64], timeout=30)
    batched = (time.perf_counter() - started) / len(texts)
    print(f"embed one passage alone: {single * 1e6:.0f} µs; in batches of 64: {batched * 1e6:.0f} µs a passage")

    vectors = await embedder.embed(MODEL, list(HANDBOOK.values()), timeout=30)
    chunks = [Chunk(entry, "", 0, text, {}) for entry, text in HANDBOOK.items()]
    semantic_hits = lexical_hits = 0
    for question, entry in QUESTIONS.items():
        [query] = await embedder.embed(MODEL, [question], timeout=30)
        scores = [sum(a * b for a, b in zip(query, v, strict=True)) for v in vectors]
        semantic_hits += list(HANDBOOK)[scores.index(max(scores))] == entry
        lexical = LexicalRetriever().scores(question, chunks)
        lexical_hits += max(lexical) > 0 and list(HANDBOOK)[lexical.index(max(lexical))] == entry
    print(f"top-1 on {len(QUESTIONS)} paraphrased questions: local {semantic_hits}, lexical {lexical_hits}")
    print(
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=2000)
    asyncio.run(main(parser.parse_args().passages))
