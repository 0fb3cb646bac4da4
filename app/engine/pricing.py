"""What one LLM call cost, in US dollars, or None when nobody knows.

Prices come, in order, from the project's `ferry.yaml` `models:` overrides, then from
the cost litellm computed for the response, then from litellm's bundled price map for
the agent's model string. A model missing everywhere costs None: Ferry never reports a
made-up number, and a run that contains one unknown call has an unknown total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelPrice:
    input_cost_per_token: float
    output_cost_per_token: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_cost_per_token + completion_tokens * self.output_cost_per_token


class CostModel:
    """Immutable price lookup for one project; shared by every run of an engine."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._overrides = dict(overrides or {})
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
        if model not in self._map_prices:
            self._map_prices[model] = litellm_price_map_price(model)
        price = self._map_prices[model]
        return None if price is None else price.cost(prompt_tokens, completion_tokens)

    def estimate(self, model: str, prompt_tokens: int) -> float | None:
        """Cost of sending `prompt_tokens` to `model`, before any completion: for budgets."""
        return self.call_cost(model, prompt_tokens, 0)


def litellm_price_map_price(model: str) -> ModelPrice | None:
    """Per-token list prices of `model` from litellm's bundled map; None when unmapped.

    Tiered prices (e.g. above 200k prompt tokens) are not applied to routed calls; a
    call to the real provider is priced by litellm itself (`response_cost`), tiers included.
    """
    import litellm

    try:
        info = litellm.get_model_info(model=model)
    except Exception:
        return None
    prompt, completion = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if prompt is None or completion is None:
        return None
    return ModelPrice(float(prompt), float(completion))
