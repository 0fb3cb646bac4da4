"""The model interface: one `complete()` from a typed request to a typed response.

Everything in the engine that talks to a model goes through `LLMClient.complete`, so
anything that honours the contract below can stand behind a run: the litellm client
(`llm.py`, every provider by model string), a direct OpenAI-protocol client, a wrapper
that adds behaviour around another client (the worker's model rate limiter), or the
in-process fakes of `testing.py`.

Contract of an implementation (what the engine relies on):

- **One call, no retries.** `complete` makes one request and returns or raises.
  Retries, back-off and the fallback model are the engine's policy (`retry.py`); a
  client that retried on its own would multiply the attempts an agent asked for.
- **Timeouts.** A call never takes much longer than `request.timeout` seconds (already
  capped by the run's remaining time): past it, the client gives up and raises
  `LLMTimeoutError`.
- **Errors are Ferry's categories.** Every failure is raised as a `FerryError`
  subclass from `app.contracts.errors`, translated at the client's own boundary
  (litellm's is `error_mapping.py`): `RateLimitError` (429), `LLMTimeoutError`,
  `LLMUnavailableError` (5xx, connection refused/reset), `LLMBadRequestError` (other
  4xx), `ContextLengthError` (the prompt does not fit), `AuthError` (401/403, missing
  key). Anything else escaping is treated as a bug in Ferry (`internal`).
- **Retry-After.** When the provider says when to come back (`Retry-After` /
  `retry-after-ms`, seconds or an HTTP date), the client puts it, in seconds, on
  `RateLimitError.retry_after_seconds` / `LLMUnavailableError.retry_after_seconds`;
  the engine waits at least that long (within the run's deadline).
- **Usage and cost.** `response.usage` carries the tokens the provider counted (0 when
  it did not say) and `cost_usd`, the cost the provider or library reported for this
  very call, or None. The engine prices the call itself: the project's `ferry.yaml`
  prices first, this reported cost second, litellm's price map third. A client that
  routes a model string to another endpoint (a proxy, the simulator) reports None
  rather than the price of the alias it called.
- **The model that answered.** `response.model` is the model string of the request
  unless the client knows better (a router that picked another model).
- **Safe for concurrent calls.** One client serves every run of an engine at once.
- **Streaming.** When `request.on_text` is set, the client may stream the answer and
  await `on_text(delta)` for each piece of text as it arrives, in order; the response
  it returns is the whole answer as without streaming (text, tool calls, usage). A
  client that cannot stream ignores `on_text`: the engine then sends the whole text at
  once. Wrappers pass the request through unchanged, so streaming survives them.

Closing: an engine closes the client it built itself (when it has an `aclose`); a
client passed to `Engine(llm=...)` belongs to whoever passed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for."""

    id: str
    name: str
    arguments: str  # JSON text as the model wrote it; parsed (and refused) by the tool runner


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMUsage:
    """What one call consumed, as the provider reported it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # reported by the provider/library for this call; None: unknown

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


#: Receives the text of an answer piece by piece while the model writes it.
TextSink = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMRequest:
    """One chat-completion request, in OpenAI chat format (the lingua franca of providers).

    None means "the provider's default" for every optional field: a client sends only
    what is set.
    """

    model: str  # the agent's model string, provider-prefixed (`openai/gpt-4o-mini`)
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None  # OpenAI function-tool schemas
    tool_choice: str | dict[str, Any] | None = None  # "auto", "none", "required" or a named function
    temperature: float | None = None
    max_tokens: int | None = None  # cap of the completion
    response_format: dict[str, Any] | None = None  # e.g. {"type": "json_schema", "json_schema": {...}}
    #: OpenAI's `reasoning_effort` vocabulary: "none", "minimal", "low", "medium", "high",
    #: "xhigh" (`reasoning_effort_of` maps an agent's setting). Clients leave it out for a
    #: model known not to reason, as litellm's `drop_params` does.
    reasoning_effort: str | None = None
    reasoning_budget: int | None = None  # tokens of thinking, for the legacy models that take a budget
    timeout: float = 120.0  # seconds this one call may take
    #: Set when someone is watching the answer being written (a chat socket): the client
    #: streams and hands over each text delta. Not part of what is sent or compared.
    on_text: TextSink | None = field(default=None, compare=False, repr=False)


def reasoning_effort_of(setting: str | None) -> str | None:
    """The request's effort for an agent's `reasoning_effort` (Connic's words: `auto`, `off`, levels).

    `auto` is the provider's default, so nothing is sent; `off` is OpenAI's `none`, which
    litellm also maps per provider (no thinking on Anthropic, a zero budget on Gemini)."""
    if setting is None or setting == "auto":
        return None
    return "none" if setting == "off" else setting


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMResponse:
    """The assistant's message, what it cost, and why it stopped."""

    model: str  # the model that answered
    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None  # "stop", "tool_calls", "length", "content_filter", …
    usage: LLMUsage = LLMUsage()

    def assistant_message(self) -> dict[str, Any]:
        """The message to append to the conversation, in OpenAI chat format."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


@runtime_checkable
class LLMClient(Protocol):
    """A model behind one call. See the module docstring for what an implementation honours."""

    async def complete(self, request: LLMRequest) -> LLMResponse:
        """Make one request; return the answer or raise a `FerryError` of its category."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Texts to vectors through one embedding model (an OpenAI `/v1/embeddings` call or litellm's).

    Honours the contract of `LLMClient` where it applies: one call, no retries, a call
    never much longer than `timeout`, failures raised as Ferry's categories."""

    async def embed(self, model: str, texts: Sequence[str], *, timeout: float) -> list[list[float]]:
        """One vector per text, in order."""
        ...


#: Wraps the engine's client (`middleware(client) -> client`): every LLM attempt of every
#: run goes through the result. The worker's model rate limiter is one.
LLMMiddleware = Callable[[LLMClient], LLMClient]
