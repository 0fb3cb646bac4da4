"""The rule format: what a test says the simulated LLM should answer, and when.

One pydantic model tree serves the in-process Python API, the HTTP control API
(`POST /_sim/rules`) and the `--rules` file of the CLI, so a rule written in one place
means the same thing everywhere. Rules are tried in order; the first whose `match`
holds gives the reply. All predicates of a `Match` must hold (AND); an empty `Match`
matches every request.

    Reply (discriminated on `kind`)
     ├── TextReply        "text"        plain assistant text
     ├── JsonReply        "json"        a JSON value serialised as the assistant text
     ├── ToolCallsReply   "tool_calls"  one or several (parallel) tool calls
     ├── FaultReply       "fault"       an HTTP error, a reset connection, a broken body
     └── SequenceReply    "sequence"    one step per matching call (e.g. 429 then text)
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator


class _Model(BaseModel):
    # Typos in a rules file must fail loudly, not silently match everything.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Model):
    """Predicates over one chat-completions request; all given ones must hold."""

    model: str | None = None
    """Exact model name as received (litellm strips the `openai/` prefix)."""
    last_user_contains: str | None = None
    """Substring of the last user message's text."""
    last_user_regex: str | None = None
    """Regex searched (re.search) in the last user message's text."""
    any_message_contains: str | None = None
    """Substring of any message's text (any role, tool results included)."""
    any_message_regex: str | None = None
    """Regex searched in any message's text."""
    has_tool_result: str | None = None
    """A `tool` message answers a call of this tool name somewhere in the conversation."""
    assistant_turns: int | None = Field(default=None, ge=0)
    """Exact number of assistant messages already in the conversation."""
    request_number: int | None = Field(default=None, ge=1)
    """1-based count of chat requests the simulator received since start/reset, this one included."""

    @field_validator("last_user_regex", "any_message_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:  # not a ValueError, so pydantic would not report it
                raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        return value


class _ReplyBase(_Model):
    delay_ms: int = Field(default=0, ge=0)
    """Extra delay before the response headers (slow first byte); adds to rule and global latency."""


class TextReply(_ReplyBase):
    kind: Literal["text"] = "text"
    text: str


class JsonReply(_ReplyBase):
    """The assistant text is `json.dumps(data)`: how a model answers a JSON output contract."""

    kind: Literal["json"] = "json"
    data: Any

    def as_text(self) -> str:
        return json.dumps(self.data)


class ToolCall(_Model):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    """A dict is sent as its JSON; a string is sent verbatim (to simulate broken arguments)."""
    id: str | None = None
    """Tool call id; by default `call_sim_<request number>_<index>`."""

    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


class ToolCallsReply(_ReplyBase):
    """Several calls in one message are parallel tool calls."""

    kind: Literal["tool_calls"] = "tool_calls"
    calls: list[ToolCall] = Field(min_length=1)
    text: str | None = None
    """Optional assistant content sent alongside the calls."""


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 + Retry-After
    SERVER_ERROR = "server_error"  # 500
    UNAVAILABLE = "unavailable"  # 503
    BAD_REQUEST = "bad_request"  # 400
    CONTEXT_LENGTH = "context_length"  # 400, OpenAI's context_length_exceeded
    AUTH = "auth"  # 401
    CONNECTION_RESET = "connection_reset"  # transport closed, no response at all
    MALFORMED_JSON = "malformed_json"  # 200 whose body is not valid JSON
    STREAM_CUT = "stream_cut"  # streaming only: first chunk sent, then the connection drops


class FaultReply(_ReplyBase):
    kind: Literal["fault"] = "fault"
    fault: FaultKind
    retry_after_s: float | None = Field(default=None, ge=0)
    """`Retry-After` header value (seconds) of a rate_limit fault; 1 when unset."""
    message: str | None = None
    """Overrides the error message (keep litellm's mapping phrases for context_length)."""


StepReply = Annotated[TextReply | JsonReply | ToolCallsReply | FaultReply, Field(discriminator="kind")]


class SequenceReply(_Model):
    """Each matching call consumes the next step, so a test can script retries."""

    kind: Literal["sequence"] = "sequence"
    steps: list[StepReply] = Field(min_length=1)
    when_exhausted: Literal["repeat_last", "cycle", "fall_through"] = "repeat_last"
    """After the last step: keep answering it, start over, or stop matching (next rule decides)."""


Reply = Annotated[TextReply | JsonReply | ToolCallsReply | FaultReply | SequenceReply, Field(discriminator="kind")]


class Rule(_Model):
    match: Match = Field(default_factory=Match)
    reply: Reply
    name: str | None = None
    """Shown in stats (`rule_hits`) and in each recorded request; defaults to `rule<index>`."""
    delay_ms: int = Field(default=0, ge=0)
    """Per-rule latency before the response headers; adds to the global latency."""
    chunk_delay_ms: int = Field(default=0, ge=0)
    """Streaming only: pause between SSE chunks."""


class RuleSet(_Model):
    """Body of `POST /_sim/rules` and the shape of a `--rules` file (a bare list is accepted too)."""

    rules: list[Rule] = Field(default_factory=list)
    mode: Literal["replace", "append"] = "replace"


_RULESET_OR_LIST: TypeAdapter[RuleSet | list[Rule]] = TypeAdapter(RuleSet | list[Rule])


def parse_rules(raw: str | bytes) -> RuleSet:
    """Reads a rules document given either as `{"rules": [...]}` or as a bare list."""
    parsed = _RULESET_OR_LIST.validate_json(raw)
    return parsed if isinstance(parsed, RuleSet) else RuleSet(rules=parsed)
