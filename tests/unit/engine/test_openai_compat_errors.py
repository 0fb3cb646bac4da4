"""The direct client's error translation: every answer a provider gives lands in the category a caller acts on."""

from __future__ import annotations

import email.utils
import json
import time

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from app.contracts.errors import (
    AuthError,
    ContextLengthError,
    FerryError,
    LLMBadRequestError,
    LLMTimeoutError,
    LLMUnavailableError,
    RateLimitError,
)
from app.engine.openai_compat.errors import (
    error_details,
    error_for_status,
    error_for_transport,
    is_context_length,
    retry_after_seconds,
)

URL = "https://api.example.com/v1/chat/completions?api-version=2025-01-01"


def openai_error(message: str, code: str | None = None, etype: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": etype, "param": None, "code": code}}).encode()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RateLimitError),
        (500, LLMUnavailableError),
        (502, LLMUnavailableError),
        (503, LLMUnavailableError),
        (529, LLMUnavailableError),  # Anthropic-style overload
        (408, LLMTimeoutError),
        (504, LLMTimeoutError),
        (401, AuthError),
        (403, AuthError),
        (400, LLMBadRequestError),
        (404, LLMBadRequestError),  # the model does not exist
        (422, LLMBadRequestError),
    ],
)
def test_status_decides_the_category(status: int, error: type[FerryError]) -> None:
    translated = error_for_status(status, openai_error("something went wrong"), {}, url=URL)
    assert type(translated) is error
    assert translated.message == "something went wrong"


@pytest.mark.parametrize(
    ("body", "provider"),
    [
        (openai_error("too long", code="context_length_exceeded"), "OpenAI / Azure code"),
        (
            openai_error("This model's maximum context length is 8192 tokens. However, you requested 9000 tokens."),
            "OpenAI, vLLM, DeepSeek wording",
        ),
        (openai_error("This endpoint's maximum context length is 128000 tokens."), "OpenRouter"),
        (
            openai_error("Prompt contains 40000 tokens, too large for model with 32768 maximum context length"),
            "Mistral",
        ),
        (
            json.dumps(
                [{"error": {"message": "The input token count (2000000) exceeds the maximum number of tokens allowed"}}]
            ).encode(),
            "Gemini (a list around the error)",
        ),
        (
            json.dumps({"detail": "request (9000 tokens) exceeds the available context size (8192)"}).encode(),
            "llama.cpp",
        ),
        (b"prompt is too long: 210000 tokens > 200000 maximum", "plain text"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_prompt_that_does_not_fit_is_context_length(body: bytes, provider: str) -> None:
    assert type(error_for_status(400, body, {}, url=URL)) is ContextLengthError, provider


def test_a_parameters_own_length_limit_is_not_context_length() -> None:
    body = openai_error(
        "Invalid 'user': string too long. Expected a string with maximum length 64", "string_above_max_length"
    )
    assert type(error_for_status(400, body, {}, url=URL)) is LLMBadRequestError


def test_context_length_on_a_server_error_stays_unavailable() -> None:
    """Only a 4xx is the caller's fault; a 500 that mentions context is still worth a retry."""
    body = openai_error("maximum context length is unknown, internal error")
    assert type(error_for_status(500, body, {}, url=URL)) is LLMUnavailableError


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise one wins
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "whenever"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_values(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert retry_after_seconds({"retry-after": when}) == pytest.approx(20, abs=2)
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after_seconds({"retry-after": past}) == 0.0


def test_retry_after_reaches_the_error_case_insensitively() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": "4"}))  # what aiohttp hands over
    rate_limited = error_for_status(429, openai_error("slow down", etype="requests"), headers, url=URL)
    assert isinstance(rate_limited, RateLimitError) and rate_limited.retry_after_seconds == 4.0
    unavailable = error_for_status(503, b"", headers, url=URL)
    assert isinstance(unavailable, LLMUnavailableError) and unavailable.retry_after_seconds == 4.0


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        (openai_error("bad model", code="model_not_found"), "bad model", "model_not_found"),
        (json.dumps({"error": "plain error text"}).encode(), "plain error text", None),
        (json.dumps({"detail": "FastAPI says no"}).encode(), "FastAPI says no", None),
        (json.dumps([{"error": {"code": 400, "message": "Gemini's words"}}]).encode(), "Gemini's words", "400"),
        (json.dumps({"message": "top-level message", "code": 3}).encode(), "top-level message", "3"),
        (b"<html>\n<h1>502 Bad Gateway</h1>\n</html>", "<html>", None),
        (b"", "", None),
    ],
)
def test_error_details_of_the_shapes_servers_send(body: bytes, message: str, code: str | None) -> None:
    assert error_details(body) == (message, code)


def test_an_empty_error_body_still_says_what_happened_and_where() -> None:
    error = error_for_status(502, b"", {}, url=URL)
    assert (
        error.message == "HTTP 502 from https://api.example.com/v1/chat/completions"
    )  # no query: no api-version noise


def test_is_context_length_by_code_alone() -> None:
    assert is_context_length("", "context_length_exceeded")
    assert not is_context_length("invalid value for temperature", "invalid_value")


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (TimeoutError(), LLMTimeoutError),
        (aiohttp.ServerTimeoutError("read timed out"), LLMTimeoutError),
        (ConnectionRefusedError(111, "Connection refused"), LLMUnavailableError),
        (aiohttp.ServerDisconnectedError(), LLMUnavailableError),
        (aiohttp.ClientPayloadError("Response payload is not completed"), LLMUnavailableError),
        (ConnectionResetError(104, "Connection reset by peer"), LLMUnavailableError),
    ],
)
def test_transport_failures(exc: BaseException, error: type[FerryError]) -> None:
    translated = error_for_transport(exc, url=URL, timeout=2.5)
    assert type(translated) is error
    assert "https://api.example.com/v1/chat/completions" in translated.message
    assert "api-version" not in translated.message
