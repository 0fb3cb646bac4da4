"""Agent specs: the typed, immutable form of one `agents/**/*.yaml` file after defaults merge.

Field names are the YAML keys, so an error location is the key path a user wrote. The
models ignore unknown keys (`extra="ignore"`) because the loader reports those itself,
with their file position (`unknown_keys.py`): a pydantic error would lose the position
and turn a harmless Connic-only key into a hard failure.

The Connic keys follow `connic-composer-sdk`'s `AgentConfig`; the keys marked Ferry are
ours (`tool_timeout`, `budget`, `isolation`, `on_timeout`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from app.compat.pii import entities_of
from app.project.approval import ApprovalSpec

if TYPE_CHECKING:
    from app.project.tooldef import ToolDef

AGENT_NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_TOOLS_PER_AGENT = 100


class _Spec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RetryOptions(_Spec):
    """How often and how patiently a failed LLM request or tool/sequential step is retried."""

    attempts: int = Field(default=3, ge=1, le=10, description="Tries including the first.")
    initial_delay: float = Field(default=10, ge=0, le=300, description="Seconds before the 2nd try.")
    max_delay: int = Field(default=30, ge=1, le=300, description="Cap of one backoff wait, seconds.")
    attempt_timeout: float = Field(
        default=120,
        gt=0,
        allow_inf_nan=False,
        description="Seconds one LLM request may take, capped by the run's remaining time.",
    )


class ConcurrencySpec(_Spec):
    """Runs whose input has the same value at `key` never overlap."""

    key: str = Field(min_length=1, description="Dot path into the run input.")
    on_conflict: Literal["queue", "drop", "coalesce"] = Field(
        default="queue",
        description="`queue` waits; `drop` ends the new run as cancelled; `coalesce` keeps one waiting run "
        "per key, a newer one replacing it (the replaced one ends cancelled).",
    )


class BudgetSpec(_Spec):
    """Ferry: per-run ceilings; a run that would pass one ends failed / budget_exceeded."""

    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class GuardrailRuleSpec(_Spec):
    """One guardrail rule (Connic's `GuardrailRule`): a kind, a mode and the kind's config."""

    type: str
    mode: Literal["block", "warn", "redact"] = "block"
    name: str | None = Field(default=None, description="The guardrails/<name>.py of a custom rule.")
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> GuardrailRuleSpec:
        from connic.core import BUILTIN_GUARDRAIL_TYPES  # an agent with guardrails: a Connic project

        if self.type not in BUILTIN_GUARDRAIL_TYPES:
            raise ValueError(
                f"unknown guardrail type {self.type!r} (known: {', '.join(sorted(BUILTIN_GUARDRAIL_TYPES))})"
            )
        if self.type == "custom" and not self.name:
            raise ValueError("a custom guardrail needs `name`: the file guardrails/<name>.py")
        if self.mode == "redact" and self.type not in ("pii", "pii_leakage"):
            raise ValueError(f"mode redact is only for pii and pii_leakage guardrails, not {self.type}")
        if self.type == "regex":
            raw = self.config.get("patterns", self.config.get("pattern"))
            patterns = [raw] if isinstance(raw, str) else raw
            if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
                raise ValueError("a regex guardrail needs config.patterns: a list of regular expressions")
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"config.patterns: {pattern!r} is not a regular expression: {exc}") from None
        if self.type in ("pii", "pii_leakage"):
            entities_of(self.config.get("entities"))  # raises ValueError naming an unknown entity
        return self


class GuardrailsSpec(_Spec):
    """`guardrails:` (Connic's `GuardrailsConfig`): rules on the input and on the output."""

    input: tuple[GuardrailRuleSpec, ...] = ()
    output: tuple[GuardrailRuleSpec, ...] = ()
    run_after_on_block: bool = Field(
        default=True, description="Whether the middleware's after() runs when an input guardrail blocks."
    )


class CollectionAccessSpec(_Spec):
    """One collection's overrides of the agent's `database` flags (None: the agent's flag)."""

    prevent_delete: bool | None = None
    prevent_write: bool | None = None


def _names_or_rules(value: Any) -> Any:
    """Connic's access lists: a list of names, or a map of names to their own rules (or null)."""
    if isinstance(value, list):
        return {str(name): {} for name in value}
    if isinstance(value, dict):
        return {name: {} if rules is None else rules for name, rules in value.items()}
    return value


class DatabaseAccessSpec(_Spec):
    """`database:` (Connic's `DatabaseAccessConfig`): which collections the db_* tools of a run
    of this agent may touch, and whether they may write or delete there."""

    collections: dict[str, CollectionAccessSpec] | None = Field(
        default=None, description="Only these collections (a list, or a map with overrides); None: all."
    )
    prevent_delete: bool = False
    prevent_write: bool = False

    @field_validator("collections", mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        return _names_or_rules(value)


class SessionSpec(_Spec):
    """`session:` (Connic's `SessionConfig`): the agent's conversation kept across runs."""

    key: str | None = Field(default=None, description="`context.<path>` or `input.<path>`; None: one session.")
    ttl: int | None = Field(default=None, ge=60, description="Seconds without a run after which a session ends.")
    history: bool = Field(default=True, description="Reuse the conversation across the session's runs.")
    browser: bool = Field(default=True, description="Connic's browser profile: no browser tools in Ferry.")

    @field_validator("key")
    @classmethod
    def _key_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        source, _, path = value.partition(".")
        if source not in ("context", "input") or not path:
            raise ValueError(f"must be context.<path> or input.<path> (e.g. context.chat_id), got {value!r}")
        return value


class McpServerSpec(_Spec):
    """One of `mcp_servers:` (Connic's `McpServerConfig`): a server whose tools the model gets.

    Connic reaches a server by `url` (streamable HTTP); Ferry also starts one over stdio
    (`command`, `args`, `env`: **Ferry**). Exactly one of `url` and `command`.
    """

    name: str = Field(min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")
    headers: dict[str, str] | None = Field(default=None, description="HTTP headers; ${VAR} from the environment.")
    tools: tuple[str, ...] | None = Field(default=None, description="Only these tools of the server; None: all.")
    condition: str | None = Field(default=None, description="Offer the server only when this holds.")
    optional: bool = Field(default=False, description="A server that cannot be reached leaves the run without it.")
    discoverable: bool = Field(default=False, description="Its tools are found through search_tools.")
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSpec:
        if (self.url is None) == (self.command is None):
            raise ValueError("give exactly one of url (streamable HTTP) and command (a server over stdio)")
        return self


class NamespaceAccessSpec(_Spec):
    """One namespace's overrides of the agent's `retrieval` flags (None: the agent's flag)."""

    prevent_delete: bool | None = None
    prevent_write: bool | None = None


class RetrievalAccessSpec(_Spec):
    """`retrieval:` or `knowledge:` (Connic's `RetrievalAccessConfig`): which namespaces the
    knowledge tools of a run of this agent may use (each with its sub-namespaces)."""

    namespaces: dict[str, NamespaceAccessSpec] | None = Field(
        default=None, description="Only these namespaces (a list, or a map with overrides); None: all."
    )
    prevent_delete: bool = False
    prevent_write: bool = False

    @field_validator("namespaces", mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        return _names_or_rules(value)


class ContextCompressionSpec(_Spec):
    """`context_compression:` (Connic's `ContextCompressionConfig`): older turns summarised
    when a prompt passes `max_prompt_tokens` or the model refuses it as too long."""

    enabled: bool = True
    model: str | None = Field(default=None, description="The model writing summaries; None: the agent's.")
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    keep_recent_messages: int = Field(default=8, ge=1)
    session_history: dict[str, Any] | None = Field(
        default=None, description="Connic's stored-session compaction: not run by Ferry (a lint warning says so)."
    )


class FolderAccessSpec(_Spec):
    """One folder's overrides of the agent's `files` flags (None: the agent's flag)."""

    prevent_delete: bool | None = None
    prevent_write: bool | None = None
    session_only: bool | None = None


class FilesAccessSpec(_Spec):
    """`files:` (Connic's `FilesAccessConfig`): the folders the file tools of a run of this
    agent may use (each with everything below it), and whether they may write or delete."""

    folders: dict[str, FolderAccessSpec] | None = Field(
        default=None, description="Only these folders (a list, or a map with overrides); None: all."
    )
    prevent_delete: bool = False
    prevent_write: bool = False
    session_only: bool = Field(default=False, description="Connic's per-session file view: not run by Ferry.")

    @field_validator("folders", mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(name).strip("/"): {} for name in value}
        if isinstance(value, dict):
            return {str(name).strip("/"): {} if rules is None else rules for name, rules in value.items()}
        return value


class ToolEntry(_Spec):
    """One item of an agent's `tools:` list: a ref (maybe a wildcard) and an optional condition.

    In YAML an entry is either `module.func` or the one-key map `{module.func: condition}`.
    """

    ref: str = Field(min_length=1)
    condition: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"ref": value}
        if isinstance(value, ToolEntry):
            return value
        if not isinstance(value, dict):
            raise ValueError("a tool must be a ref string or a one-key map {ref: condition}")
        if "ref" in value and set(value) <= {"ref", "condition"}:
            return value  # keyword construction: ToolEntry(ref=..., condition=...)
        if len(value) != 1:
            raise ValueError(f"a conditional tool must be a map with exactly one key (got {len(value)} keys)")
        ref, condition = next(iter(value.items()))
        if not isinstance(condition, str) or not condition.strip():
            raise ValueError(f"the condition of tool {ref!r} must be a non-empty string")
        return {"ref": str(ref), "condition": condition}


class _AgentBase(_Spec):
    version: Literal["1.0"]
    name: str
    description: str
    max_iterations: int = Field(default=100, ge=1)
    retry_options: RetryOptions = Field(default_factory=RetryOptions)
    timeout: int | None = Field(default=None, ge=5, description="Seconds for the whole run.")
    max_concurrent_runs: int = Field(default=1, ge=1)
    # Ferry keys
    tool_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    budget: BudgetSpec | None = None
    isolation: Literal["inline", "process"] = "inline"
    on_timeout: Literal["partial", "fail"] = "partial"
    guardrails: GuardrailsSpec | None = None
    database: DatabaseAccessSpec | None = None
    retrieval: RetrievalAccessSpec | None = None
    knowledge: RetrievalAccessSpec | None = None  # Connic's other name for `retrieval`
    files: FilesAccessSpec | None = None

    # Set by the loader once tool refs are resolved; not a YAML key.
    _resolved_tools: tuple[ToolDef, ...] = PrivateAttr(default=())

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not AGENT_NAME_PATTERN.match(value):
            raise ValueError(
                "must be lowercase letters, digits and hyphens, starting and ending with a "
                f"letter or digit (got {value!r})"
            )
        return value

    @property
    def resolved_tools(self) -> tuple[ToolDef, ...]:
        """The agent's tools as callables, in declaration order (tool agents: their one tool)."""
        return self._resolved_tools


class LLMAgentSpec(_AgentBase):
    type: Literal["llm"] = "llm"
    model: str = Field(min_length=1, description="litellm model string, provider-prefixed.")
    system_prompt: str = Field(min_length=1)
    fallback_model: str | None = None
    temperature: float = Field(default=1.0, ge=0, le=2)
    tools: tuple[ToolEntry, ...] = Field(default=(), max_length=MAX_TOOLS_PER_AGENT)
    output_schema: str | None = None
    concurrency: ConcurrencySpec | None = None
    mcp_servers: tuple[McpServerSpec, ...] = Field(default=(), max_length=50)
    discoverable_tools: tuple[ToolEntry, ...] = Field(default=(), max_length=MAX_TOOLS_PER_AGENT)
    context_compression: ContextCompressionSpec | None = None
    reasoning_effort: Literal["auto", "off", "minimal", "low", "medium", "high", "xhigh"] | None = Field(
        default=None, description="How hard the model thinks; `auto`/omitted: the provider's default."
    )
    reasoning_budget: int | None = Field(default=None, ge=1, description="Legacy thinking budget, tokens.")
    reasoning: bool | None = Field(default=None, description="Deprecated: `reasoning_effort` auto / off.")

    # Set by the loader: the discoverable tools resolved (found through search_tools at run time).
    _discoverable: tuple[ToolDef, ...] = PrivateAttr(default=())

    @property
    def discoverable(self) -> tuple[ToolDef, ...]:
        return self._discoverable

    session: SessionSpec | None = None
    approval: ApprovalSpec | None = None  # tool calls that wait for a human (app/project/approval.py)

    @model_validator(mode="before")
    @classmethod
    def _legacy_reasoning(cls, data: Any) -> Any:
        """Connic's deprecated `reasoning: bool` is `reasoning_effort` auto / off, as its SDK migrates it."""
        if isinstance(data, dict) and isinstance(data.get("reasoning"), bool) and data.get("reasoning_effort") is None:
            return {**data, "reasoning_effort": "auto" if data["reasoning"] else "off"}
        return data

    @field_validator("session", mode="before")
    @classmethod
    def _session_flag(cls, value: Any) -> Any:
        """`session: true` is one session for every run of the agent; `false` none."""
        if value is True:
            return {}
        return None if value is False else value


class SequentialAgentSpec(_AgentBase):
    type: Literal["sequential"] = "sequential"
    agents: tuple[str, ...] = Field(min_length=1, description="Stage agent names, in order.")


class ToolAgentSpec(_AgentBase):
    type: Literal["tool"] = "tool"
    tool_name: str = Field(min_length=1, description="`module.func`, called as func(payload=...).")
    concurrency: ConcurrencySpec | None = None


def _agent_type(value: Any) -> str:
    """The union's tag: a missing `type` means an LLM agent, as in the YAML format."""
    if isinstance(value, dict):
        return str(value.get("type", "llm"))
    return str(getattr(value, "type", "llm"))


#: The one name for "any agent". Annotations and isinstance checks see the plain union;
#: pydantic (`TypeAdapter(AgentSpec)`) picks the member by `type`.
AgentSpec = Annotated[
    Annotated[LLMAgentSpec, Tag("llm")]
    | Annotated[SequentialAgentSpec, Tag("sequential")]
    | Annotated[ToolAgentSpec, Tag("tool")],
    Discriminator(_agent_type),
]

AGENT_CLASSES: dict[str, type[_AgentBase]] = {
    "llm": LLMAgentSpec,
    "sequential": SequentialAgentSpec,
    "tool": ToolAgentSpec,
}
