"""What a user reads when a provider fails: the provider's message once, not litellm's wrappers."""

from __future__ import annotations

import pytest

from app.contracts.errors import AuthError
from app.engine.error_mapping import clean_llm_message, map_llm_exception


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for requests.",
            "Rate limit reached for requests.",
        ),
        (
            "litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError: "
            "OpenAIException - This model's maximum context length is 8192 tokens.",
            "This model's maximum context length is 8192 tokens.",
        ),
        (
            "litellm.MidStreamFallbackError: litellm.APIConnectionError: APIConnectionError: OpenAIException - "
            "Connection error. Original exception: APIConnectionError: litellm.APIConnectionError: Connection error.",
            "Connection error.",
        ),
        ("litellm.Timeout: APITimeoutError - Request timed out. Error_str: Request timed out.", "Request timed out."),
        (
            # Gemini: the provider's JSON error body after the wrappers.
            'litellm.RateLimitError: litellm.RateLimitError: VertexAIException - {\n  "error": {\n    "code": 429,\n'
            '    "message": "Resource has been exhausted (e.g. check quota).",\n    "status": "RESOURCE_EXHAUSTED"\n  }\n}',
            "Resource has been exhausted (e.g. check quota).",
        ),
        (
            # OpenAI SDK style: status code, then a Python dict.
            "litellm.AuthenticationError: AuthenticationError: OpenAIException - Error code: 401 - "
            "{'error': {'message': 'Incorrect API key provided: sk-abc.', 'type': 'invalid_request_error'}}",
            "Incorrect API key provided: sk-abc.",
        ),
        (
            'litellm.BadRequestError: AnthropicException - {"type":"error","error":{"type":"invalid_request_error",'
            '"message":"max_tokens: \\"100000\\" is too large"}}',
            'max_tokens: "100000" is too large',
        ),
        (
            # Not a wrapper: a message that merely contains a dash keeps its words.
            "litellm.AuthenticationError: Missing Anthropic API Key - set `ANTHROPIC_API_KEY`",
            "Missing Anthropic API Key - set `ANTHROPIC_API_KEY`",
        ),
        (
            "litellm.APIConnectionError: Missing Gemini API key. Set the GEMINI_API_KEY environment variable.\n"
            'Traceback (most recent call last):\n  File "main.py", line 1',
            "Missing Gemini API key. Set the GEMINI_API_KEY environment variable.",
        ),
        ("GeminiException - {not json at all", "{not json at all"),
        ("plain words", "plain words"),
    ],
)
def test_the_provider_message_is_given_once_on_one_line(raw: str, expected: str) -> None:
    assert clean_llm_message(raw) == expected


def test_a_message_of_only_wrappers_is_empty_so_the_caller_names_the_class() -> None:
    assert clean_llm_message("   ") == ""


@pytest.mark.parametrize(
    "raw",
    [
        "litellm.AuthenticationError: Missing credentials. Please pass an `api_key`, or set the OPENAI_API_KEY environment variable.",
        "The api_key client option must be set either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable",
        "GEMINI_API_KEY not set: api key missing",
    ],
)
def test_a_missing_provider_key_is_an_auth_error_whatever_the_wording(raw: str) -> None:
    assert isinstance(map_llm_exception(RuntimeError(raw)), AuthError)
