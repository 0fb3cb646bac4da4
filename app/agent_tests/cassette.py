"""LLM cassettes: a test's model exchanges, recorded once, replayed offline.

One JSON file per test case, `tests/cassettes/<suite>/<test>.json`, holding for each run
of the case the LLM calls it made in order: the request as the engine built it (model,
messages, tools, parameters; not the timeout, which depends on the clock) and the
answer, or the provider error, it got. Replaying compares each request with the
recorded one: a changed prompt, tool schema, model or input shows up as the first
difference, in words (`explain_difference`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from app.agent_tests.discovery import TESTS_DIR
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
from app.engine.model import LLMRequest, LLMResponse, LLMUsage, ToolCall

CASSETTE_FORMAT = "ferry-cassette/1"
CASSETTES_DIR = "cassettes"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SNIPPET = 36


class Exchange(BaseModel):
    request: dict[str, Any]
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class CassetteRun(BaseModel):
    exchanges: list[Exchange] = Field(default_factory=list)


class Cassette(BaseModel):
    format: str = CASSETTE_FORMAT
    suite: str
    agent: str
    test: str
    recorded_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    runs: list[CassetteRun] = Field(default_factory=list)

    def for_run(self, index: int) -> CassetteRun:
        """Run `index` replays the recording of run `index` (cycling when more runs than recorded)."""
        return self.runs[index % len(self.runs)] if self.runs else CassetteRun()


def cassette_path(project_root: Path, suite_key: str, test_name: str) -> Path:
    return project_root / TESTS_DIR / CASSETTES_DIR / suite_key / f"{_UNSAFE.sub('_', test_name)}.json"


def read_cassette(path: Path) -> Cassette:
    """The cassette at `path`; ValueError says why it cannot be used."""
    try:
        cassette = Cassette.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{path.name} is not a cassette: {exc.errors()[0]['msg']}") from None
    if cassette.format != CASSETTE_FORMAT:
        raise ValueError(f"{path.name} is a {cassette.format!r} cassette; this Ferry reads {CASSETTE_FORMAT!r}")
    return cassette


def write_cassette(path: Path, cassette: Cassette) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(cassette.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)  # a reader never sees half a cassette


def request_data(request: LLMRequest) -> dict[str, Any]:
    """What a request is compared on, as plain JSON values (tuples become lists, as when read back)."""
    data = {
        "model": request.model,
        "messages": request.messages,
        "tools": request.tools,
        "tool_choice": request.tool_choice,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "response_format": request.response_format,
    }
    normalised: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return normalised


def response_from(data: dict[str, Any]) -> LLMResponse:
    usage = data.get("usage") or {}
    return LLMResponse(
        model=str(data.get("model", "")),
        text=data.get("text"),
        tool_calls=tuple(
            ToolCall(id=str(c["id"]), name=str(c["name"]), arguments=str(c["arguments"]))
            for c in data.get("tool_calls") or []
        ),
        finish_reason=data.get("finish_reason"),
        usage=LLMUsage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cost_usd=usage.get("cost_usd"),
        ),
    )


def error_data(error: FerryError) -> dict[str, Any]:
    return {
        "category": error.category.value,
        "message": error.message,
        "retry_after_seconds": getattr(error, "retry_after_seconds", None),
    }


def error_from(data: dict[str, Any]) -> FerryError:
    """The recorded provider error, raised again in its category (so retries replay too)."""
    category, message = str(data.get("category")), str(data.get("message", ""))
    retry_after = data.get("retry_after_seconds")
    if category == "rate_limit":
        return RateLimitError(message, retry_after)
    if category == "llm_unavailable":
        return LLMUnavailableError(message, retry_after)
    simple: dict[str, type[FerryError]] = {
        "llm_timeout": LLMTimeoutError,
        "llm_bad_request": LLMBadRequestError,
        "context_length": ContextLengthError,
        "auth": AuthError,
    }
    return simple.get(category, InternalError)(message)


def explain_difference(recorded: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first way `current` differs from the recorded request, said for a person; None: same."""
    if recorded.get("model") != current.get("model"):
        return f"the model changed: recorded {recorded.get('model')!r}, now {current.get('model')!r}"
    tools = _tools_difference(recorded.get("tools") or [], current.get("tools") or [])
    if tools:
        return tools
    messages = _messages_difference(recorded.get("messages") or [], current.get("messages") or [])
    if messages:
        return messages
    for key in ("temperature", "max_tokens", "tool_choice", "response_format"):
        if recorded.get(key) != current.get(key):
            return f"{key} changed: recorded {recorded.get(key)!r}, now {current.get(key)!r}"
    return None


def _tool_name(schema: Any) -> str:
    if isinstance(schema, dict):
        return str((schema.get("function") or {}).get("name", "?"))
    return "?"


def _tools_difference(recorded: list[Any], current: list[Any]) -> str | None:
    before = {_tool_name(t): t for t in recorded}
    after = {_tool_name(t): t for t in current}
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    if added or removed:
        parts = ([f"added {', '.join(added)}"] if added else []) + (
            [f"removed {', '.join(removed)}"] if removed else []
        )
        return f"the tools offered changed: {'; '.join(parts)}"
    for name in before:
        if before[name] != after[name]:
            return f"the schema of tool {name!r} changed (its description or parameters)"
    if list(before) != list(after):
        return "the tools are offered in another order"
    return None


def _messages_difference(recorded: list[Any], current: list[Any]) -> str | None:
    for index, (old, new) in enumerate(zip(recorded, current, strict=False)):
        if old == new:
            continue
        role = new.get("role") if isinstance(new, dict) else None
        what = {
            "system": "the system prompt changed",
            "user": "the input (user message) changed",
            "tool": f"the result of tool {new.get('name', '?') if isinstance(new, dict) else '?'} changed",
        }.get(str(role), f"message {index} ({role}) changed")
        return f"{what}: {_snippets(_content(old), _content(new))}"
    if len(recorded) != len(current):
        return f"the conversation has {len(current)} messages, {len(recorded)} were recorded"
    return None


def _content(message: Any) -> str:
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return str(message["content"])
    return json.dumps(message, sort_keys=True, default=str)


def _snippets(old: str, new: str) -> str:
    """Both texts around their first difference: `recorded "…x…", now "…y…"`."""
    at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    start = max(0, at - _SNIPPET // 2)

    def around(text: str) -> str:
        piece = text[start : start + _SNIPPET]
        return ("…" if start else "") + piece + ("…" if start + _SNIPPET < len(text) else "")

    return f"recorded {json.dumps(around(old), ensure_ascii=False)}, now {json.dumps(around(new), ensure_ascii=False)}"
