"""litellm's price map, read as a data file: list prices without importing litellm.

litellm ships its prices as `model_prices_and_context_window_backup.json` inside its
package (the file it loads itself with `LITELLM_LOCAL_MODEL_COST_MAP`). Importing
litellm to read it costs seconds and ~200 MB, which a worker whose models all take the
direct OpenAI-protocol path must never pay. Parsing the whole file (3.5 MB, ~3,900
models) for the one or two models a worker prices cost ~0.1 s on its loop, ~8 MiB at its
peak and ~2 MiB at rest after its first runs (bench/RESULTS.md, "uvloop"), so a model's
entry is found in the file's bytes and parsed alone, once per model and process.

Lookup follows litellm's for the cases that matter to Ferry: the model string as
written (`gemini/gemini-2.5-flash`, `azure/gpt-4o`), then the name without its provider
prefix when that entry belongs to the same provider (`openai/gpt-4o-mini` is listed as
`gpt-4o-mini` with provider `openai`, `vertex_ai/gemini-2.5-pro` as `gemini-2.5-pro`
with provider `vertex_ai-language-models`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

PRICE_FILE_NAME = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True, slots=True)
class ListPrice:
    """Per-token prices of one model, in US dollars."""

    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_input_token_cost: float | None  # price of a prompt token served from the provider's cache
    provider: str

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        cached = min(max(cached_prompt_tokens, 0), prompt_tokens) if self.cache_read_input_token_cost is not None else 0
        return (
            (prompt_tokens - cached) * self.input_cost_per_token
            + cached * (self.cache_read_input_token_cost or 0.0)
            + completion_tokens * self.output_cost_per_token
        )


def litellm_price_file() -> Path | None:
    """Where the installed litellm keeps its price map; None without litellm.

    `find_spec` of a top-level package locates it without executing its `__init__`.
    """
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PRICE_FILE_NAME
    return path if path.is_file() else None


def read_price_entry(path: Path, name: str) -> ListPrice | None:
    """The price of one entry of a litellm-format price map, parsing that entry only: the
    key at four spaces (as litellm writes its entries), else at any indentation."""
    data = path.read_bytes()
    key = json.dumps(name).encode()
    if key not in data:  # most lookups of an unlisted model end here, without a regex over the file
        return None
    needle = b"\n    " + key + b": {"
    at = data.find(needle)
    if at >= 0 and (end := data.find(b"\n    }", at)) >= 0:
        with contextlib.suppress(ValueError):  # not closed at four spaces (one line): decoded below
            return _price_of(json.loads(data[at + len(needle) - 1 : end + len(b"\n    }")]))
    found = re.search(rb"\n[ \t]*" + re.escape(key) + rb"\s*:\s*\{", data)
    if found is None:
        return None
    entry, _ = json.JSONDecoder().raw_decode(data[found.end() - 1 :].decode())
    return _price_of(entry)


def _price_of(entry: object) -> ListPrice | None:
    if not isinstance(entry, dict):
        return None
    prompt, completion = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if not isinstance(prompt, int | float) or not isinstance(completion, int | float):
        return None
    cache_read = entry.get("cache_read_input_token_cost")
    return ListPrice(
        input_cost_per_token=float(prompt),
        output_cost_per_token=float(completion),
        cache_read_input_token_cost=float(cache_read) if isinstance(cache_read, int | float) else None,
        provider=str(entry.get("litellm_provider") or ""),
    )


@functools.lru_cache(maxsize=1024)
def _bundled_price(name: str) -> ListPrice | None:
    path = litellm_price_file()
    if path is None:
        return None
    try:
        return read_price_entry(path, name)
    except (OSError, ValueError):
        return None


def list_price(model: str, prices: dict[str, ListPrice] | None = None) -> ListPrice | None:
    """The list price of a model string, or None when the map does not know it."""
    lookup = _bundled_price if prices is None else prices.get
    found = lookup(model)
    if found is not None:
        return found
    provider, slash, bare = model.partition("/")
    if not slash:
        return None
    found = lookup(bare)
    return found if found is not None and _same_provider(found.provider, provider) else None


def _same_provider(listed: str, prefix: str) -> bool:
    """litellm lists some providers under variants: `vertex_ai-language-models`, `bedrock_converse`."""
    return listed == prefix or listed.startswith((f"{prefix}-", f"{prefix}_"))
