"""Connic sessions: an agent's conversation kept across runs, per session key.

`session: {key, ttl, history}` (SDK `SessionConfig`): the key is a dot path into the
run's context (`context.chat_id`, set by the request or by middleware) or input
(`input.user_id`); without a key all runs of the agent share one session. A run of an
LLM agent starts with the session's earlier turns before its own message, and when it
completes its message and answer are appended. A session not updated for `ttl` seconds
starts over. The store is the run-history database, shared by every worker
(app/observability/history/sessions.py); a session is scoped by tenant and environment
like the document store, so two tenants' equal keys are two sessions.

At most `MAX_TURNS` messages are kept (the oldest dropped): Ferry has no context
compression yet, and a session must not outgrow the model's context by itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from app.compat.documents import DocumentScope

MAX_TURNS = 40
_MISSING = object()


class SessionStore(Protocol):
    async def load(self, scope: DocumentScope, agent: str, key: str, ttl: timedelta | None) -> list[dict[str, str]]:
        """The session's turns, oldest first; [] for a new or expired session."""
        ...

    async def append(
        self, scope: DocumentScope, agent: str, key: str, turns: list[dict[str, str]], ttl: timedelta | None
    ) -> None:
        """Add turns at the end (keeping the last `MAX_TURNS`; an expired session starts over)
        and mark the session used now."""
        ...


class SessionRules(Protocol):
    """An agent's `session` (app.project.models.SessionSpec)."""

    @property
    def key(self) -> str | None: ...

    @property
    def ttl(self) -> int | None: ...

    @property
    def history(self) -> bool: ...


def session_key(rules: SessionRules, payload: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """The session this run belongs to: `""` for the agent's one shared session, None when
    the key's path is missing (the run then has no session, as a run without a key value)."""
    if rules.key is None:
        return ""
    source, _, path = rules.key.partition(".")
    value: Any = context if source == "context" else payload
    for part in path.split("."):
        value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING or value is None:
            return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def answer_text(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, default=str)
