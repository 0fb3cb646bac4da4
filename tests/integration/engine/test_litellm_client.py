"""What only the litellm path must take care of, over real HTTP (the simulator). The model
contract itself (categories, Retry-After, tool calls, usage, options) is checked for every
client in test_model_contract.py."""

from __future__ import annotations

import pytest

from app.contracts.errors import FerryError
from app.devstack.llm_sim import FaultKind, FaultReply, Rule, TextReply
from app.engine import LLMRequest
from app.engine.llm import LiteLLMClient

MODEL = "openai/sim-model"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(sim) -> LiteLLMClient:
    return LiteLLMClient(base_url=sim.base_url, api_key="sim-key")


@pytest.mark.parametrize(
    "fault", [FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR, FaultKind.UNAVAILABLE, FaultKind.CONNECTION_RESET]
)
async def test_litellm_never_retries_on_its_own(sim, client, fault) -> None:
    """Ferry's policy does the retrying: one complete() is one HTTP request, even for a retryable fault."""
    sim.set_rules([Rule(reply=FaultReply(fault=fault, retry_after_s=0 if fault is FaultKind.RATE_LIMIT else None))])
    with pytest.raises(FerryError) as raised:
        await client.complete(LLMRequest(model=MODEL, messages=HELLO))
    assert raised.value.retryable
    assert sim.calls_total == 1
    assert isinstance(raised.value.__cause__, Exception)  # raised from litellm's own exception
    assert "\n" not in raised.value.message


async def test_options_left_unset_are_not_sent(sim, client) -> None:
    sim.set_rules([Rule(reply=TextReply(text="ok"))])
    await client.complete(LLMRequest(model=MODEL, messages=HELLO))
    body = sim.requests[0].body
    for unset in ("tools", "tool_choice", "temperature", "max_tokens", "response_format"):
        assert unset not in body  # None means the provider's default
    assert body["messages"] == HELLO
