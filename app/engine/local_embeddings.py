"""Embeddings computed in this process by a model that ships inside a PyPI package, so
Connic's knowledge tools rank by meaning with nothing to configure: no key, no server,
nothing downloaded at run time (`local/wordllama`, the default `knowledge.embedding_model`).

Why WordLlama (`wordllama`, MIT): its wheel carries its weights (`l2_supercat`, 256
dimensions, 16 MB of float16: a token-embedding table distilled from a large language
model's) and its tokenizer, and embedding a text is a tokenizer pass and an average of
table rows: 0.2–0.3 ms a passage of ~500 characters on one core, ~0.7 s to load,
~80 MB of memory (numpy, the tokenizer, the table). The lightest sentence-transformer packaged for PyPI (all-MiniLM-L6-v2) is an
83 MB wheel that needs torch or onnxruntime and a transformer pass per passage; static
embeddings retrieve a little less well on benchmarks but find paraphrases ("vacation
time" → "annual leave") that lexical ranking cannot, which is what the knowledge tools
need, at a cost a worker does not notice (bench/RESULTS.md, "Local embeddings").

The model loads on the first embedding call, in a thread (a worker that never uses
knowledge never loads it), once per `LocalEmbedder`; what it holds is read-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib.resources import files
from types import MappingProxyType
from typing import Any, Protocol

from app.contracts.errors import ConfigError
from app.project.config import LOCAL_EMBEDDING_MODELS

#: More texts than this are embedded in a thread: a long document's chunks would otherwise
#: hold the event loop for milliseconds; a query (one text) is cheaper than the hop.
INLINE_TEXTS = 8


#: The cosine similarity that scores 1.0. Connic's `min_score` (0.3 by default) was meant
#: for provider embeddings, where passages on one subject reach cosines of 0.5–0.8; a
#: static model's cosines are compressed (questions and their passages 0.27–0.48, other
#: pairs 0.06 on average, 9 in 10 below 0.15, on the handbook of
#: tests/unit/compat/test_knowledge_local.py), so its scores are cosine / 0.5: the default
#: threshold keeps cosines from 0.15.
FULL_SCORE_COSINE = MappingProxyType({"local/wordllama": 0.5})


def is_local(model: str) -> bool:
    return model.startswith("local/")


class _Inference(Protocol):
    def embed(self, texts: list[str], norm: bool = ...) -> Any: ...


def _load_wordllama() -> _Inference:
    """WordLlama from the files inside its wheel.

    `WordLlama.load()` looks for the tokenizer in a folder the wheel does not use and then
    downloads it from Hugging Face; building the inference object from the packaged
    files directly never touches the network."""
    try:
        from safetensors import safe_open
        from wordllama import WordLlama
        from wordllama.inference import WordLlamaInference
    except ImportError as exc:  # a broken install: the package is a dependency of Ferry
        raise ConfigError(f"local/wordllama needs the wordllama package ({exc}): pip install wordllama") from exc
    package = files("wordllama")
    tokenizer = WordLlama.load_tokenizer(package / "tokenizers" / "l2_supercat_tokenizer_config.json")
    with safe_open(str(package / "weights" / "l2_supercat_256.safetensors"), framework="np", device="cpu") as weights:
        table = weights.get_tensor("embedding.weight")
    inference: _Inference = WordLlamaInference(table, tokenizer, binary=False)
    return inference


class LocalEmbedder:
    """`Embedder` (app/engine/model.py) for the `local/…` models."""

    def __init__(self) -> None:
        self._inference: _Inference | None = None
        self._loading = asyncio.Lock()

    async def embed(self, model: str, texts: Sequence[str], *, timeout: float) -> list[list[float]]:
        if model not in LOCAL_EMBEDDING_MODELS:
            raise ConfigError(
                f"unknown local embedding model {model!r}: the local models are {sorted(LOCAL_EMBEDDING_MODELS)}"
            )
        if not texts:
            return []
        inference = await self._model()
        batch = list(texts)
        if len(batch) <= INLINE_TEXTS:
            return _vectors(inference, batch)
        return await asyncio.to_thread(_vectors, inference, batch)

    async def _model(self) -> _Inference:
        async with self._loading:
            if self._inference is None:
                self._inference = await asyncio.to_thread(_load_wordllama)
            return self._inference


def _vectors(inference: _Inference, texts: list[str]) -> list[list[float]]:
    vectors: list[list[float]] = inference.embed(texts, norm=True).tolist()
    return vectors
