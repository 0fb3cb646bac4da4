"""The chat-completions wire format: an `LLMRequest` as a JSON body, a JSON body as an `LLMResponse`.

Only what the request sets is sent (None is "the provider's default"). OpenAI's
reasoning models (o1/o3/o4…, gpt-5 except gpt-5-chat) take `max_completion_tokens`
instead of `max_tokens` and refuse a temperature other than 1: the request is adapted
the way the litellm path adapts it (`drop_params`), so one agent behaves the same on
both paths.
An agent's reasoning effort is sent as `reasoning_effort`, except to the OpenAI chat
models known not to reason (gpt-3.5/gpt-4 family, gpt-5-chat), which refuse it; a
reasoning budget has no OpenAI parameter and is not sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.contracts.errors import LLMUnavailableError
from app.engine.model import LLMRequest, LLMResponse, LLMUsage, ToolCall


def is_reasoning_model(name: str) -> bool:
    """OpenAI's o-series and gpt-5 family, as litellm recognises them (by the bare name)."""
    name = name.rsplit("/", 1)[-1].lower()
    if len(name) > 1 and name[0] == "o" and name[1].isdigit():
        return True
    return ("gpt-5" in name or "gpt-6" in name) and "gpt-5-chat" not in name


def refuses_reasoning_effort(name: str) -> bool:
    """OpenAI chat models that answer 400 to `reasoning_effort` (litellm drops it for them)."""
    name = name.rsplit("/", 1)[-1].lower()
    return name.startswith(("gpt-3", "gpt-4", "chatgpt")) or "gpt-5-chat" in name


def request_body(request: LLMRequest, model_name: str) -> dict[str, Any]:
    """The JSON body for one chat completion (streamed when someone watches the text: `on_text`)."""
    body: dict[str, Any] = {"model": model_name, "messages": request.messages}
    if request.tools:
        body["tools"] = request.tools
        if request.tool_choice is not None:  # a tool_choice without tools is refused by OpenAI
            body["tool_choice"] = request.tool_choice
    reasoning = is_reasoning_model(model_name)
    if request.temperature is not None and (not reasoning or request.temperature == 1):
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_completion_tokens" if reasoning else "max_tokens"] = request.max_tokens
    if request.response_format is not None:
        body["response_format"] = request.response_format
    if request.reasoning_effort is not None and not refuses_reasoning_effort(model_name):
        body["reasoning_effort"] = request.reasoning_effort
    if request.on_text is not None:
        # include_usage: the last chunk carries the usage, so a streamed call is priced too
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


@dataclass(frozen=True, slots=True)
class Completion:
    """A parsed answer: the response, and what pricing needs beyond it."""

    response: LLMResponse
    answered_by: str | None  # the model name the server says answered (Azure: the real model of a deployment)
    cached_prompt_tokens: int


class MalformedCompletion(LLMUnavailableError):
    """The body is JSON but not a chat completion: the server is broken, for now."""


def parse_completion(data: Any, model: str) -> Completion:
    """An `LLMResponse` for the request's `model` from a decoded chat-completion body."""
    if not isinstance(data, dict):
        raise MalformedCompletion("the body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedCompletion("no choices in the answer")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedCompletion("the first choice has no message")
    calls = tuple(_tool_call(call, index) for index, call in enumerate(message.get("tool_calls") or ()))
    reported = data.get("usage")
    usage: dict[str, Any] = reported if isinstance(reported, dict) else {}
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    finish = choice.get("finish_reason")
    answered_by = data.get("model")
    return Completion(
        response=LLMResponse(
            model=model,
            text=_text(message.get("content")),
            tool_calls=calls,
            finish_reason=finish if isinstance(finish, str) else None,
            usage=LLMUsage(
                prompt_tokens=_count(usage.get("prompt_tokens")),
                completion_tokens=_count(usage.get("completion_tokens")),
            ),
        ),
        answered_by=answered_by if isinstance(answered_by, str) and answered_by else None,
        cached_prompt_tokens=_count(cached),
    )


def _tool_call(call: Any, index: int) -> ToolCall:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise MalformedCompletion(f"tool call {index} has no function")
    function = call["function"]
    arguments = function.get("arguments")
    return ToolCall(
        id=str(call.get("id") or f"call_{index}"),
        name=str(function.get("name") or ""),
        # JSON text as the model wrote it; a few servers (older Ollama) send an object
        arguments=arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {}),
    )


def _text(content: Any) -> str | None:
    """The assistant's text: a string, or the text parts of a content list (Mistral's reasoning models)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text" and "text" in p]
        return "".join(str(p) for p in parts) if parts else None
    return None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0
