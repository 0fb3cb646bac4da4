"""`LiteLLMClient`: the model interface (`model.py`) through litellm, the only caller of it.

Everything above this module speaks `LLMRequest`/`LLMResponse` and Ferry errors; only
here (and in `error_mapping.py`, its translation boundary) do litellm's arguments,
response objects and exceptions appear. litellm is imported once, lazily (the import
takes seconds and, without `LITELLM_LOCAL_MODEL_COST_MAP`, tries to download its price
map).

Routing: with a base URL (the simulator, a vLLM server, a proxy) every model
`provider/name` is called as `openai/name` there; without one the agent's model string
goes to litellm unchanged, so provider keys in the environment just work.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from app.contracts.errors import FerryError, LLMUnavailableError
from app.engine.error_mapping import map_llm_exception
from app.engine.model import LLMRequest, LLMResponse, LLMUsage, TextSink, ToolCall
from app.engine.openai_compat.embeddings import parse_embeddings
from app.engine.openai_compat.stream import CompletionFold
from app.engine.openai_compat.wire import MalformedCompletion, parse_completion


@functools.cache
def load_litellm() -> ModuleType:
    """Import litellm once per process, offline-safe."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


class LiteLLMClient:
    """Calls one LLM request, once: retries and fallbacks are the caller's business."""

    def __init__(self, *, base_url: str | None, api_key: str) -> None:
        self.base_url = base_url
        self._api_key = api_key

    def route(self, model: str) -> dict[str, Any]:
        """litellm arguments that select the endpoint for `model`."""
        if self.base_url is None:
            return {"model": model}
        name = model.split("/", 1)[1] if "/" in model else model
        return {"model": f"openai/{name}", "api_base": self.base_url, "api_key": self._api_key}

    async def complete(self, request: LLMRequest) -> LLMResponse:
        litellm = load_litellm()
        kwargs: dict[str, Any] = {
            **self.route(request.model),
            "messages": request.messages,
            "timeout": request.timeout,
            # Ferry's tenacity policy does the retrying; litellm and the OpenAI SDK must not.
            "num_retries": 0,
            "max_retries": 0,
            # A model that rejects a parameter (temperature on some reasoning models) gets
            # the request without it instead of failing every run with llm_bad_request.
            "drop_params": True,
        }
        optional = {
            "tools": request.tools or None,
            "tool_choice": request.tool_choice,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "response_format": request.response_format,
            # litellm maps both per provider (Anthropic's and Gemini's thinking budgets) and,
            # with drop_params, leaves them out for a model that does not reason.
            "reasoning_effort": request.reasoning_effort,
            "thinking": (
                {"type": "enabled", "budget_tokens": request.reasoning_budget}
                if request.reasoning_budget is not None
                else None
            ),
        }
        kwargs.update({name: value for name, value in optional.items() if value is not None})
        if request.on_text is not None:
            return await self._stream(litellm, request, kwargs, request.on_text)
        try:
            raw = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise map_llm_exception(exc) from exc
        return self._parse(request.model, raw)

    async def embed(self, model: str, texts: Sequence[str], *, timeout: float) -> list[list[float]]:
        """litellm's `aembedding` (the `Embedder` interface): every provider it knows."""
        litellm = load_litellm()
        try:
            async with asyncio.timeout(timeout):
                raw = await litellm.aembedding(
                    **self.route(model), input=list(texts), timeout=timeout, num_retries=0, max_retries=0
                )
        except FerryError:
            raise
        except Exception as exc:
            raise map_llm_exception(exc) from exc
        data = raw.model_dump() if hasattr(raw, "model_dump") else raw
        try:
            return parse_embeddings(data, len(texts))
        except ValueError as exc:
            raise LLMUnavailableError(f"{model}: the answer is not embeddings ({exc})") from exc

    async def _stream(
        self, litellm: Any, request: LLMRequest, kwargs: dict[str, Any], on_text: TextSink
    ) -> LLMResponse:
        """The answer streamed, each text delta handed over; folded as the direct path folds it."""
        fold = CompletionFold()
        try:
            async with asyncio.timeout(request.timeout):
                chunks = await litellm.acompletion(**kwargs, stream=True, stream_options={"include_usage": True})
                async for chunk in chunks:
                    text = fold.add(chunk.model_dump())
                    if text:
                        await on_text(text)
        except FerryError:
            raise
        except Exception as exc:
            raise map_llm_exception(exc) from exc
        try:
            response = parse_completion(fold.completion(), request.model).response
        except MalformedCompletion as exc:
            raise LLMUnavailableError(f"{request.model}: the streamed answer is not a completion ({exc})") from exc
        return response  # no reported cost: litellm prices streamed calls only in its logging hooks

    def _parse(self, model: str, raw: Any) -> LLMResponse:
        choice = raw.choices[0]
        message = choice.message
        calls = tuple(
            ToolCall(
                id=str(call.id or f"call_{i}"),
                name=str(call.function.name or ""),
                arguments=_arguments_text(call.function.arguments),
            )
            for i, call in enumerate(getattr(message, "tool_calls", None) or [])
        )
        usage = getattr(raw, "usage", None)
        reported = None
        if self.base_url is None:  # a routed call's cost would be the alias's, not the agent's model's
            hidden = getattr(raw, "_hidden_params", None) or {}
            cost = hidden.get("response_cost")
            reported = float(cost) if isinstance(cost, int | float) else None
        return LLMResponse(
            model=model,
            text=message.content if isinstance(message.content, str) else None,
            tool_calls=calls,
            finish_reason=getattr(choice, "finish_reason", None),
            usage=LLMUsage(
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                cost_usd=reported,
            ),
        )

    async def aclose(self) -> None:
        """Nothing of its own to close: litellm's HTTP clients belong to the whole process
        (see `close_llm_clients`), and closing them here would break every other engine."""


async def close_llm_clients() -> None:
    """Close litellm's process-wide async HTTP clients; for whoever owns the process
    (a CLI command, a worker's main) at its very end, never per engine or per run."""
    if "litellm" not in sys.modules:
        return  # never imported: nothing to close, and no seconds spent importing it
    close = getattr(load_litellm(), "close_litellm_async_clients", None)
    if close is not None:
        await close()


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments if arguments is not None else {})
