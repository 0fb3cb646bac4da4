"""The direct client's one boundary where HTTP answers and transport failures become Ferry errors.

What a caller should do next decides the category, not the wording: the status code
first, then the provider's error code and message for the one distinction a status
does not make (a 400 because the prompt does not fit is `context_length`). Checked in
order, most specific first:

    transport      timeout → llm_timeout; refused, reset, cut, unreadable → llm_unavailable
    429            rate_limit (Retry-After / retry-after-ms on the error)
    408, 504       llm_timeout
    5xx, other     llm_unavailable (Retry-After on the error)
    401, 403       auth
    4xx            context_length when the provider says so, else llm_bad_request (404: no such model)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from app.contracts.errors import (
    AuthError,
    ContextLengthError,
    FerryError,
    LLMBadRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
    RateLimitError,
)

#: Error codes providers give a prompt that does not fit (OpenAI, Azure, Groq, vLLM, …).
CONTEXT_LENGTH_CODES = frozenset({"context_length_exceeded", "model_context_window_exceeded", "prompt_too_long"})

#: Phrases of the same error where a provider gives no code (litellm's list, lower case).
CONTEXT_LENGTH_PHRASES = (
    "maximum context length",  # OpenAI, Azure, vLLM, DeepSeek, OpenRouter ("this endpoint's maximum context length")
    "context length exceeded",
    "context_length_exceeded",
    "context window",
    "exceed context limit",
    "maximum context limit",
    "is longer than the model's context length",
    "input tokens exceed the configured limit",
    "`inputs` tokens + `max_new_tokens` must be",  # Together / TGI
    "exceeds the available context size",  # llama.cpp
    "exceeds the maximum number of tokens allowed",  # Gemini's OpenAI endpoint
    "prompt is too long",  # Anthropic's OpenAI endpoint
    "too large for model with",  # Mistral
    "requested token count exceeds",
)

#: Phrases that look like a context overflow but are a parameter's own length limit.
NOT_CONTEXT_LENGTH = ("string_above_max_length", "invalid 'user'")


def error_for_status(status: int, body: bytes, headers: Mapping[str, str], *, url: str) -> FerryError:
    """The Ferry error for a non-2xx answer (or a 2xx whose body is an error envelope)."""
    message, code = error_details(body)
    message = message or f"HTTP {status} from {_where(url)}"
    if status == 429:
        return RateLimitError(message, retry_after_seconds=retry_after_seconds(headers))
    if status in (408, 504):
        return LLMTimeoutError(message)
    if status in (401, 403):
        return AuthError(message)
    if 400 <= status < 500:
        if is_context_length(message, code):
            return ContextLengthError(message)
        return LLMBadRequestError(message)
    return LLMUnavailableError(message, retry_after_seconds=retry_after_seconds(headers))


def error_for_transport(exc: BaseException, *, url: str, timeout: float) -> FerryError:
    """The Ferry error for a call that got no complete answer."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return LLMTimeoutError(f"no answer from {_where(url)} within {timeout:g}s")
    detail = str(exc).strip() or type(exc).__name__
    return LLMUnavailableError(f"connection to {_where(url)} failed: {detail}"[:1000])


def malformed_answer(url: str, detail: str) -> LLMUnavailableError:
    """A 200 whose body is not a chat completion: the server is broken, for now."""
    return LLMUnavailableError(f"unreadable answer from {_where(url)}: {detail}"[:1000])


def error_details(body: bytes) -> tuple[str, str | None]:
    """The provider's message (one line) and error code, from the shapes servers use:
    OpenAI's `{"error": {"message", "code"}}`, `{"error": "text"}`, FastAPI's `{"detail": …}`,
    `{"message": …}`, or plain text."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return _one_line(body.decode("utf-8", errors="replace")), None
    if isinstance(data, list) and data and isinstance(data[0], dict):  # Gemini wraps its error in a list
        data = data[0]
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        text = error.get("message") or error.get("detail") or error.get("msg") or ""
        code = error.get("code") or error.get("type")
        if not isinstance(text, str):
            text = json.dumps(text)
        return _one_line(text), str(code) if code is not None else None
    return _one_line(error if isinstance(error, str) else json.dumps(error)), None


def is_context_length(message: str, code: str | None) -> bool:
    if code is not None and code.lower() in CONTEXT_LENGTH_CODES:
        return True
    lowered = message.lower()
    if any(phrase in lowered for phrase in NOT_CONTEXT_LENGTH):
        return False
    return any(phrase in lowered for phrase in CONTEXT_LENGTH_PHRASES)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms` (OpenAI, Azure) or `Retry-After` (seconds or an HTTP date), in seconds."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        parsed = _seconds(millis)
        if parsed is not None:
            return parsed / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    parsed = _seconds(value)
    if parsed is not None:
        return parsed
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def _one_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:1000]


def _where(url: str) -> str:
    """The URL without its query (Azure's api-version) for messages."""
    return url.split("?", 1)[0]
