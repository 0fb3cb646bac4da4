"""The embeddings wire format: OpenAI's `POST /v1/embeddings`, as every compatible server speaks it.

The URL is the chat-completions URL of the model's endpoint with `/chat/completions`
replaced by `/embeddings` (an Azure deployment's query string kept), so a model string
reaches the same server, with the same key and proxy, whichever of the two it is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_CHAT = "/chat/completions"


def embeddings_url(chat_url: str) -> str:
    path, question, query = chat_url.partition("?")
    if path.endswith(_CHAT):
        path = path[: -len(_CHAT)]
    return f"{path}/embeddings{question}{query}"


def embeddings_body(model_name: str, texts: Sequence[str]) -> dict[str, Any]:
    return {"model": model_name, "input": list(texts), "encoding_format": "float"}


def parse_embeddings(data: Any, count: int) -> list[list[float]]:
    """The vectors of a decoded answer, in the order of the texts (`index`, not arrival).

    A body that is no embeddings answer is a `ValueError`; the client reports it as the
    server's failure (`llm_unavailable`), as it does a malformed completion."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        raise ValueError(f"expected {count} embeddings in `data`")
    vectors: list[list[float] | None] = [None] * count
    for position, item in enumerate(items):
        index = item.get("index", position) if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or not isinstance(vector, list):
            raise ValueError(f"item {position} is not an embedding")
        if not vector or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in vector):
            raise ValueError(f"embedding {index} is not a list of numbers")
        vectors[index] = [float(x) for x in vector]
    if any(v is None for v in vectors):
        raise ValueError("an index is missing from the answer")
    return [v for v in vectors if v is not None]
