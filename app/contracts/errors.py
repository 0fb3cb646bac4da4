"""Ferry's one error tree: a closed category enum and one root exception.

Every failure Ferry reports — in a run result, a span, a metric, a DLQ record or a CLI
line — carries exactly one `ErrorCategory`. Exceptions carry their category as a class
attribute, so the code that raises decides the category once and everything downstream
just reads it. The root and the run-failure classes live here, at the bottom of the
layers; each layer's own errors subclass them where they are raised (module in brackets).

    FerryError                          internal
     ├── RateLimitError                 rate_limit          retryable
     ├── LLMTimeoutError                llm_timeout         retryable
     ├── LLMUnavailableError            llm_unavailable     retryable
     │    └── MalformedCompletion       [engine.openai_compat.wire] a 200 that is no completion
     ├── LLMBadRequestError             llm_bad_request
     │    └── ContextLengthError        context_length
     ├── AuthError                      auth
     ├── ToolError                      tool_error
     │    └── ToolTimeoutError          tool_timeout
     ├── OutputValidationError          output_validation
     ├── BudgetExceededError            budget_exceeded
     ├── RunTimeoutError                timeout
     │    └── StageTimeoutError         [engine.stage]
     ├── BadInputError                  bad_input           a request Ferry cannot run
     │    ├── InputError                [cli.run_input]     --input unreadable or not JSON
     │    ├── AmbiguousRunId            [observability.history.queries] a run id prefix of several runs
     │    ├── ApiProblem                [api.problems]      an HTTP request refused: a problem document
     │    ├── PoisonRecord              [streams.messages]  a record that is no RunRequest
     │    ├── CallbackRefused           [connectors.webhook.ssrf] a callback URL to a non-public address
     │    ├── ObjectRefused             [connectors.triggers.s3_objects] an object a trigger does not run
     │    └── NotWaiting                [streams.approvals] a decision on a run that waits for none
     ├── CancelledRunError              cancelled
     ├── ApprovalPending                approval [engine.approval] the run parks until a human decides
     ├── ApprovalRejectedError          approval [engine.approval] refused (or timed out) with on_rejection: fail
     ├── InternalError                  internal
     └── ConfigError                    bad_input           the user's project, machine or
          │                                                 cluster is not as Ferry needs it:
          │                                                 never a run result; the CLI
          │                                                 prints one line and exits 2
          ├── ProjectError              [project.problems]  .problems: every error found
          │    └── ProjectNotFoundError [project.loader]
          ├── YamlSyntaxError           [project.yamlmarks] .loc
          ├── ToolRefError              [project.tool_refs]
          ├── ToolImportError           [project.tool_import]
          ├── ToolSchemaError           [project.tool_schema]
          ├── ConditionError            [project.conditions]
          ├── DevStackError             [devstack.errors]   .cause and .fix
          ├── DeploymentError           [deploy.errors]     a deployment refused (dirty, too big, unknown)
          ├── ServiceUnreachableError                       .service, .address and .fix
          └── TopicConflictError        [streams.topic_admin] .conflicts
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from app.contracts.spans import LAST_ANSWER_CHARS


class ErrorCategory(StrEnum):
    RATE_LIMIT = "rate_limit"
    LLM_TIMEOUT = "llm_timeout"
    LLM_UNAVAILABLE = "llm_unavailable"
    LLM_BAD_REQUEST = "llm_bad_request"
    CONTEXT_LENGTH = "context_length"
    AUTH = "auth"
    TOOL_ERROR = "tool_error"
    TOOL_TIMEOUT = "tool_timeout"
    OUTPUT_VALIDATION = "output_validation"
    BUDGET_EXCEEDED = "budget_exceeded"
    TIMEOUT = "timeout"
    BAD_INPUT = "bad_input"
    CANCELLED = "cancelled"
    APPROVAL = "approval"  # a tool call waits for, or was refused by, a human decision
    INTERNAL = "internal"


#: Categories worth another attempt of the same LLM request.
RETRYABLE_CATEGORIES: frozenset[ErrorCategory] = frozenset(
    {ErrorCategory.RATE_LIMIT, ErrorCategory.LLM_TIMEOUT, ErrorCategory.LLM_UNAVAILABLE}
)


class FerryError(Exception):
    """Root of every error Ferry raises on purpose."""

    category: ClassVar[ErrorCategory] = ErrorCategory.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE_CATEGORIES


class RateLimitError(FerryError):
    category = ErrorCategory.RATE_LIMIT

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class LLMTimeoutError(FerryError):
    category = ErrorCategory.LLM_TIMEOUT


class LLMUnavailableError(FerryError):
    category = ErrorCategory.LLM_UNAVAILABLE

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class LLMBadRequestError(FerryError):
    category = ErrorCategory.LLM_BAD_REQUEST


class ContextLengthError(LLMBadRequestError):
    category = ErrorCategory.CONTEXT_LENGTH


class AuthError(FerryError):
    category = ErrorCategory.AUTH


class ToolError(FerryError):
    category = ErrorCategory.TOOL_ERROR

    def __init__(self, message: str, tool_name: str) -> None:
        super().__init__(message)
        self.tool_name = tool_name


class ToolTimeoutError(ToolError):
    category = ErrorCategory.TOOL_TIMEOUT

    def __init__(self, tool_name: str, timeout_seconds: float) -> None:
        super().__init__(f"tool {tool_name!r} did not finish within {timeout_seconds:g}s", tool_name)
        self.timeout_seconds = timeout_seconds


class OutputValidationError(FerryError):
    """`last_answer` is the model's rejected text: kept so a prompt can be debugged from it."""

    category = ErrorCategory.OUTPUT_VALIDATION

    def __init__(self, message: str, last_answer: str | None = None) -> None:
        super().__init__(message)
        self.last_answer = last_answer

    @property
    def details(self) -> dict[str, Any] | None:
        """The run result's `error.details`: the last answer, clipped, and its full length."""
        if self.last_answer is None:
            return None
        return {"last_answer": clip_answer(self.last_answer), "last_answer_chars": len(self.last_answer)}


def clip_answer(text: str) -> str:
    """A model's answer as results and spans keep it: at most `LAST_ANSWER_CHARS` characters."""
    return text if len(text) <= LAST_ANSWER_CHARS else text[: LAST_ANSWER_CHARS - 1] + "…"


class BudgetExceededError(FerryError):
    category = ErrorCategory.BUDGET_EXCEEDED


class RunTimeoutError(FerryError):
    category = ErrorCategory.TIMEOUT

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__(f"run did not finish within {timeout_seconds:g}s")
        self.timeout_seconds = timeout_seconds


class BadInputError(FerryError):
    category = ErrorCategory.BAD_INPUT


class CancelledRunError(FerryError):
    category = ErrorCategory.CANCELLED


class InternalError(FerryError):
    category = ErrorCategory.INTERNAL


class ConfigError(FerryError):
    """Not a run failure: what the user set up (project, machine, cluster) needs fixing."""

    category = ErrorCategory.BAD_INPUT


class ServiceUnreachableError(ConfigError):
    """A service Ferry needs (broker, PostgreSQL, an LLM server) did not answer at its address."""

    def __init__(self, service: str, address: str, fix: str) -> None:
        super().__init__(f"cannot reach {service} at {address} — fix: {fix}")
        self.service = service
        self.address = address
        self.fix = fix
