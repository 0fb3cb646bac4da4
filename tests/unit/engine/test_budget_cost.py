"""Budgets stop before the call that would pass them; cost is a price or None, never a guess."""

from __future__ import annotations

import pytest

from app.contracts import Usage
from app.contracts.errors import BudgetExceededError
from app.engine.budget import Budget, estimate_prompt_tokens
from app.engine.pricing import CostModel, ModelPrice

MESSAGES = [{"role": "user", "content": "x" * 400}]  # ~100+ tokens by the 4-chars rule
PRICES = CostModel({"openai/m": ModelPrice(0.001, 0.002)})


def test_estimate_is_json_characters_over_four() -> None:
    estimate = estimate_prompt_tokens(MESSAGES, None)
    assert 100 < estimate < 120
    assert estimate_prompt_tokens(MESSAGES, [{"type": "function", "function": {"name": "f" * 40}}]) > estimate


def test_token_budget_refuses_the_call_that_would_pass_it() -> None:
    budget = Budget(max_tokens=200)
    used = Usage(total_tokens=50)
    budget.check_before_request(used, steps=1, model="openai/m", messages=MESSAGES, tools=None, cost_model=PRICES)
    with pytest.raises(BudgetExceededError, match="max_tokens 200"):
        budget.check_before_request(
            Usage(total_tokens=100), steps=1, model="openai/m", messages=MESSAGES, tools=None, cost_model=PRICES
        )


def test_cost_budget_uses_the_price_of_the_next_prompt() -> None:
    budget = Budget(max_cost_usd=0.2)
    ok = Usage(cost_usd=0.05)  # + ~0.11 for the next prompt: under 0.2
    budget.check_before_request(ok, steps=0, model="openai/m", messages=MESSAGES, tools=None, cost_model=PRICES)
    with pytest.raises(BudgetExceededError, match="max_cost_usd"):
        budget.check_before_request(
            Usage(cost_usd=0.1), steps=0, model="openai/m", messages=MESSAGES, tools=None, cost_model=PRICES
        )


def test_unknown_cost_cannot_be_enforced_and_is_not() -> None:
    Budget(max_cost_usd=0.0001).check_before_request(
        Usage(cost_usd=None), steps=0, model="openai/m", messages=MESSAGES, tools=None, cost_model=PRICES
    )


def test_max_iterations_counts_steps() -> None:
    budget = Budget(max_iterations=2)
    budget.check_before_request(Usage(), steps=1, model="m", messages=[], tools=None, cost_model=PRICES)
    with pytest.raises(BudgetExceededError, match="max_iterations"):
        budget.check_before_request(Usage(), steps=2, model="m", messages=[], tools=None, cost_model=PRICES)


def test_a_chain_budget_tightens_its_stages() -> None:
    stage = Budget(max_tokens=1000, max_cost_usd=None, max_iterations=5).within(
        Budget(max_tokens=300, max_cost_usd=1.0)
    )
    assert (stage.max_tokens, stage.max_cost_usd, stage.max_iterations) == (300, 1.0, 5)


def test_price_override_matches_with_or_without_provider_prefix() -> None:
    assert PRICES.call_cost("openai/m", 100, 10) == pytest.approx(0.12)
    assert CostModel({"m": ModelPrice(0.5, 1.0)}).call_cost("openai/m", 2, 1) == pytest.approx(2.0)


def test_override_beats_the_provider_reported_cost() -> None:
    assert PRICES.call_cost("openai/m", 100, 10, reported=99.0) == pytest.approx(0.12)


def test_usage_with_one_unknown_cost_is_unknown() -> None:
    total = Usage(cost_usd=0.5)
    total.add(Usage(cost_usd=None))
    total.add(Usage(cost_usd=0.25))
    assert total.cost_usd is None
