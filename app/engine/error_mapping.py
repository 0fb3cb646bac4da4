"""The one boundary where litellm's exceptions become Ferry's error categories.

litellm raises OpenAI-SDK-shaped exceptions whose class tree does not follow what a
caller should do next (its `Timeout` is an `APIConnectionError`, its
`ServiceUnavailableError` is not an `InternalServerError`, a context-window overflow
is a `BadRequestError`). `map_llm_exception` checks the most specific classes first
and returns the Ferry error to raise `from` the original.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from app.contracts.errors import (
    AuthError,
    ContextLengthError,
    FerryError,
    InternalError,
    LLMBadRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
    RateLimitError,
)

_CONTEXT_LENGTH_HINTS = (
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
)


def retry_after_seconds(exc: BaseException) -> float | None:
    """The provider's Retry-After (seconds or HTTP date), wherever litellm put it."""
    for headers in _header_sources(exc):
        for name in ("retry-after-ms", "retry-after"):
            value = _header(headers, name)
            if value is None:
                continue
            parsed = _parse_retry_after(value, millis=name.endswith("-ms"))
            if parsed is not None:
                return parsed
    return None


def map_llm_exception(exc: BaseException) -> FerryError:
    """Translate an exception raised by `litellm.acompletion` (most specific first)."""
    if isinstance(exc, FerryError):
        return exc
    from litellm import exceptions as litellm  # imported by the caller already: a dict lookup

    message = _message(exc)
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ContextLengthError(message)
    if isinstance(exc, litellm.RateLimitError):
        return RateLimitError(message, retry_after_seconds=retry_after_seconds(exc))
    if isinstance(exc, litellm.Timeout | asyncio.TimeoutError | TimeoutError):
        return LLMTimeoutError(message or "LLM request timed out")
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError) or _missing_key(message):
        return AuthError(message)
    if isinstance(
        exc,
        litellm.ServiceUnavailableError
        | litellm.InternalServerError
        | litellm.BadGatewayError
        | litellm.APIConnectionError,
    ):
        return LLMUnavailableError(message, retry_after_seconds=retry_after_seconds(exc))
    if isinstance(exc, litellm.BadRequestError | litellm.NotFoundError | litellm.UnprocessableEntityError):
        if any(hint in message.lower() for hint in _CONTEXT_LENGTH_HINTS):
            return ContextLengthError(message)
        return LLMBadRequestError(message)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.APIError) or isinstance(status, int):
        if status == 429:
            return RateLimitError(message, retry_after_seconds=retry_after_seconds(exc))
        if status in (401, 403):
            return AuthError(message)
        if isinstance(status, int) and 400 <= status < 500:
            return LLMBadRequestError(message)
        return LLMUnavailableError(message, retry_after_seconds=retry_after_seconds(exc))
    return InternalError(f"unexpected error from the LLM client: {type(exc).__name__}: {message}")


def _message(exc: BaseException) -> str:
    text = clean_llm_message(str(getattr(exc, "message", "") or exc))
    return text or type(exc).__name__


# litellm stacks class names in front of the provider's words, once per re-raise:
# `litellm.RateLimitError: RateLimitError: OpenAIException - …`.
_WRAPPER = re.compile(r"^\s*(?:litellm\.)?(?:[A-Za-z]+(?:Error|Exception)|Timeout)(?::\s+|\s+-\s+)")
_STATUS_PREFIX = re.compile(r"^\s*Error code:\s*\d{3}\s*-\s*")
_TAILS = (" Original exception:", " Error_str:", "\nReceived Model Group=", "\nAvailable Model Group")
_QUOTED_MESSAGE = re.compile(r"""["']message["']\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def clean_llm_message(text: str) -> str:
    """The provider's own message, once, on one line.

    litellm wraps it in its class names (repeated per re-raise), appends the original
    exception, model-group details or help links, and for some providers (Gemini,
    Anthropic, OpenAI's `Error code: 429 - {...}`) the message is inside a JSON body.
    """
    text = text.strip()
    while (stripped := _WRAPPER.sub("", text, count=1)) != text:
        text = stripped
    text = _STATUS_PREFIX.sub("", text)
    for tail in _TAILS:
        head, found, _ = text.partition(tail)
        if found and head.strip():
            text = head
    if text.startswith("{"):
        text = _body_message(text) or text
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line[:1000]


def _body_message(body: str) -> str | None:
    """`error.message` (or `message`) of a provider's JSON error body, also when truncated."""
    match = _QUOTED_MESSAGE.search(body)
    if match is None:
        return None
    raw = match.group(1) if match.group(1) is not None else match.group(2)
    try:
        return str(json.loads(f'"{raw}"'))
    except json.JSONDecodeError:
        return raw


def _missing_key(message: str) -> bool:
    """litellm reports a missing provider key as a connection error; it is an auth problem.

    The wording differs by provider and SDK version: `… API key not set`, the openai SDK's
    `Missing credentials. Please pass an api_key …` and `The api_key client option must be set …`.
    """
    lowered = message.lower()
    if "missing credentials" in lowered or "api_key client option must be set" in lowered:
        return True
    return "api key" in lowered and any(word in lowered for word in ("missing", "not set", "no api key", "not found"))


def _header_sources(exc: BaseException) -> list[Mapping[str, Any]]:
    sources: list[Mapping[str, Any]] = []
    for attr in ("litellm_response_headers", "headers"):
        value = getattr(exc, attr, None)
        if value:
            sources.append(value)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers:
        sources.append(headers)
    return sources


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    try:
        value = headers.get(name)
        if value is None:  # plain dicts are case-sensitive
            for key, candidate in headers.items():
                if str(key).lower() == name:
                    value = candidate
                    break
    except (AttributeError, TypeError):
        return None
    return None if value is None else str(value)


def _parse_retry_after(value: str, *, millis: bool) -> float | None:
    try:
        seconds = float(value)
        seconds = seconds / 1000.0 if millis else seconds
        return max(0.0, seconds)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
