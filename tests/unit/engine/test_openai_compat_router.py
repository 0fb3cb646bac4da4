"""`ModelRouter` sends each request to the client of its model's path and closes what it holds."""

from __future__ import annotations

from app.engine.model import LLMRequest, LLMResponse
from app.engine.model_router import ModelRouter
from app.engine.openai_compat import EndpointTable
from app.project.config import ModelOverrides


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.models: list[str] = []
        self.closed = False

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.models.append(request.model)
        return LLMResponse(model=request.model, text=self.name)

    async def aclose(self) -> None:
        self.closed = True


async def test_each_model_goes_to_its_paths_client() -> None:
    direct, litellm = Recorder("direct"), Recorder("litellm")
    endpoints = EndpointTable(overrides={"groq/llama": ModelOverrides(api="openai")}, environ={})
    router = ModelRouter(endpoints, direct=direct, litellm=litellm)
    for model in ("openai/gpt-4o", "gemini/gemini-2.5-flash", "azure/dep", "groq/llama", "anthropic/claude"):
        answer = await router.complete(LLMRequest(model=model, messages=[]))
        assert answer.model == model
    assert direct.models == ["openai/gpt-4o", "azure/dep", "groq/llama"]
    assert litellm.models == ["gemini/gemini-2.5-flash", "anthropic/claude"]

    await router.aclose()
    assert direct.closed and litellm.closed


async def test_with_a_base_url_litellm_gets_only_what_ferry_yaml_sends_it() -> None:
    direct, litellm = Recorder("direct"), Recorder("litellm")
    endpoints = EndpointTable(
        base_url="http://sim/v1", overrides={"openai/kept-on-litellm": ModelOverrides(api="litellm")}, environ={}
    )
    router = ModelRouter(endpoints, direct=direct, litellm=litellm)
    await router.complete(LLMRequest(model="gemini/gemini-2.5-flash", messages=[]))
    await router.complete(LLMRequest(model="openai/kept-on-litellm", messages=[]))
    assert (direct.models, litellm.models) == (["gemini/gemini-2.5-flash"], ["openai/kept-on-litellm"])
