"""What one LLM call cost, in US dollars, or None when nobody knows.

Prices come, in order, from the project's `ferry.yaml` `models:` overrides, then from
the cost the model client reported for the response, then from a price map for the
agent's model string (litellm's bundled one for the engine's own litellm client). A model missing everywhere costs None: Ferry never reports a
made-up number, and a run that contains one unknown call has an unknown total.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.engine.price_map import list_price


@dataclass(frozen=True)
class ModelPrice:
    input_cost_per_token: float
    output_cost_per_token: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_cost_per_token + completion_tokens * self.output_cost_per_token


#: Per-token list prices of a model string, or None when unknown.
PriceMap = Callable[[str], "ModelPrice | None"]


class CostModel:
    """Immutable price lookup for one project; shared by every run of an engine.

    `price_map` is the last source (None: none). It is a parameter because litellm's map
    costs seconds of import: an engine whose model is a fake or another client does not
    pay for it unless it asks.
    """

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None, *, price_map: PriceMap | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._price_map = price_map
        # Memo of litellm's price map per model (None = not in the map): the lookup costs
        # about a millisecond and the answer never changes within a process.
        self._map_prices: dict[str, ModelPrice | None] = {}

    def price(self, model: str) -> ModelPrice | None:
        """The override for `model` (also matched without its provider prefix)."""
        if model in self._overrides:
            return self._overrides[model]
        bare = model.split("/", 1)[-1]
        return self._overrides.get(bare)

    def call_cost(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        reported: float | None = None,
    ) -> float | None:
        override = self.price(model)
        if override is not None:
            return override.cost(prompt_tokens, completion_tokens)
        if reported is not None:
            return float(reported)
        if self._price_map is None:
            return None
        if model not in self._map_prices:
            self._map_prices[model] = self._price_map(model)
        price = self._map_prices[model]
        return None if price is None else price.cost(prompt_tokens, completion_tokens)

    def estimate(self, model: str, prompt_tokens: int) -> float | None:
        """Cost of sending `prompt_tokens` to `model`, before any completion: for budgets."""
        return self.call_cost(model, prompt_tokens, 0)


def litellm_price_map_price(model: str) -> ModelPrice | None:
    """Per-token list prices of `model` from litellm's bundled map; None when unmapped.

    The map is read as a data file (`price_map.py`): pricing never imports litellm, which
    a worker on the direct model path must not pay for. Tiered prices (e.g. above 200k
    prompt tokens) are not applied to routed calls; a call to the real provider is priced
    by its client (litellm's `response_cost`, tiers included; the direct client's list price).
    """
    price = list_price(model)
    return None if price is None else ModelPrice(price.input_cost_per_token, price.output_cost_per_token)
