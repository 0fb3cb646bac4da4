"""The OpenAI chat-completions wire format the simulator speaks.

Kept apart from the server so the exact shapes litellm parses (non-streaming bodies,
SSE chunks, error envelopes) are in one place and readable against OpenAI's docs.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from app.devstack.llm_sim.conversation import count_words
from app.devstack.llm_sim.rules import FaultKind, FaultReply, ToolCall

#: litellm maps a 400 to ContextWindowExceededError when the text contains this phrase
#: (litellm_core_utils/exception_mapping_utils.py, is_error_str_context_window_exceeded).
CONTEXT_LENGTH_MESSAGE = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "{tokens} tokens. Please reduce the length of the messages."
)


@dataclass(frozen=True)
class Answer:
    """A successful reply, ready to be rendered as a body or as SSE chunks."""

    completion_id: str
    model: str
    text: str | None
    tool_calls: tuple[ToolCall, ...]
    tool_call_ids: tuple[str, ...]
    prompt_tokens: int

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def completion_tokens(self) -> int:
        words = count_words(self.text or "")
        return words + sum(count_words(f"{c.name} {c.arguments_json()}") for c in self.tool_calls)

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def _tool_calls_json(self) -> list[dict[str, Any]]:
        return [
            {"id": call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json()}}
            for c, call_id in zip(self.tool_calls, self.tool_call_ids, strict=True)
        ]

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = self._tool_calls_json()
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason, "logprobs": None}],
            "usage": self.usage(),
        }

    def chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        """The stream as OpenAI sends it: role, content pieces, tool call deltas by index, finish, usage."""
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": piece} for piece in _pieces(self.text or "")]
        for index, (call, call_id) in enumerate(zip(self.tool_calls, self.tool_call_ids, strict=True)):
            head = {"index": index, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            deltas.append({"tool_calls": [head]})
            deltas += [
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in _pieces(call.arguments_json(), size=16)
            ]
        created = int(time.time())
        chunks = [self._chunk(created, delta, None) for delta in deltas]
        chunks.append(self._chunk(created, {}, self.finish_reason))
        if include_usage:
            chunks.append(self._chunk(created, None, None) | {"usage": self.usage()})
        return chunks

    def _chunk(self, created: int, delta: dict[str, Any] | None, finish: str | None) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": self.model,
            "choices": choices,
        }


def _pieces(text: str, size: int | None = None) -> list[str]:
    """Words with their trailing spaces (or fixed-size slices): joined back they give the text."""
    if not text:
        return []
    if size is not None:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return re.findall(r"\s*\S+\s*|\s+", text)


def sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def error_response(fault: FaultReply, prompt_tokens: int) -> ErrorResponse:
    """OpenAI's error envelope, worded so that litellm maps each status to the intended class.

    The wording matters: litellm checks message phrases before status codes, e.g. "429" or
    "rate limit" in any body makes a RateLimitError, and OpenAI's "The server had an error
    processing your request." makes an InternalServerError even on a 503.
    """
    kind = fault.fault
    headers: dict[str, str] = {}
    if kind is FaultKind.RATE_LIMIT:
        status, etype, code = 429, "requests", "rate_limit_exceeded"
        message = "Rate limit reached for requests (simulated)."
        retry_after = fault.retry_after_s if fault.retry_after_s is not None else 1.0
        headers["Retry-After"] = f"{retry_after:g}"
    elif kind is FaultKind.SERVER_ERROR:
        status, etype, code = 500, "server_error", None
        message = "Simulated internal error."
    elif kind is FaultKind.UNAVAILABLE:
        status, etype, code = 503, "server_error", "service_unavailable"
        message = "Simulated overload, the service is unavailable."
    elif kind is FaultKind.BAD_REQUEST:
        status, etype, code = 400, "invalid_request_error", None
        message = "Simulated bad request."
    elif kind is FaultKind.CONTEXT_LENGTH:
        status, etype, code = 400, "invalid_request_error", "context_length_exceeded"
        message = CONTEXT_LENGTH_MESSAGE.format(tokens=max(prompt_tokens, 8193))
    elif kind is FaultKind.AUTH:
        status, etype, code = 401, "invalid_request_error", "invalid_api_key"
        message = "Incorrect API key provided (simulated)."
    else:
        raise ValueError(f"{kind} is not an HTTP error fault")
    body = {"error": {"message": fault.message or message, "type": etype, "param": None, "code": code}}
    return ErrorResponse(status=status, body=body, headers=headers)
