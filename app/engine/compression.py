"""Context compression (Connic's `context_compression`): older turns summarised so a long
run, or a long session, fits the model's context.

It runs before a model call when the previous call's prompt passed `max_prompt_tokens`
(the provider's own count), and when a call fails `context_length`: then the step is
tried again on the compressed conversation, once per overflow. The system message and
the last `keep_recent_messages` messages stay verbatim (the kept part never starts
inside a tool call's answers); everything between becomes one message holding a
summary written by `model` (default: the agent's). The summary call is an `llm_call`
span named `context_compression`, its tokens and cost the run's.
"""

from __future__ import annotations

import json
from typing import Any

from app.contracts import SpanKind
from app.engine.model import LLMRequest
from app.engine.model_call import side_call
from app.engine.state import RunDeps, RunState
from app.observability.tracing import usage_attributes
from app.project.models import LLMAgentSpec

#: A tool result longer than this is cut before it is summarised (the summary needs its gist).
TOOL_RESULT_CHARS = 4000
SUMMARY_PREFIX = "Summary of the earlier part of this conversation:\n"


def over_budget(agent: LLMAgentSpec, last_prompt_tokens: int) -> bool:
    rules = agent.context_compression
    return bool(
        rules is not None
        and rules.enabled
        and rules.max_prompt_tokens is not None
        and last_prompt_tokens > rules.max_prompt_tokens
    )


def _transcript(messages: list[dict[str, Any]]) -> str:
    lines = []
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, default=str) if content else ""
        if message["role"] == "tool" and len(text) > TOOL_RESULT_CHARS:
            text = text[:TOOL_RESULT_CHARS] + " …(cut)"
        calls = message.get("tool_calls") or []
        called = "; ".join(f"called {c['function']['name']}({c['function']['arguments']})" for c in calls)
        lines.append(f"[{message['role']}] {text} {called}".strip())
    return "\n".join(lines)


async def compress(deps: RunDeps, state: RunState, agent: LLMAgentSpec) -> bool:
    """Summarise the middle of `state.messages` in place; False when there is nothing to compress."""
    rules = agent.context_compression
    if rules is None or not rules.enabled:
        return False
    messages = state.messages
    start = 1 if messages and messages[0]["role"] == "system" else 0
    cut = max(start, len(messages) - rules.keep_recent_messages)
    while cut > start and messages[cut]["role"] == "tool":  # keep a tool answer with the call that asked
        cut -= 1
    if cut - start < 2:
        return False
    older = messages[start:cut]
    model = rules.model or agent.model
    prompt = [
        {
            "role": "system",
            "content": "Summarise this conversation between a user, an assistant and its tools for the assistant "
            "to continue it: keep every fact, number, name, decision, tool result and open question; drop "
            "pleasantries. Write plain text.",
        },
        {"role": "user", "content": _transcript(older)},
    ]
    with deps.tracer.span(
        SpanKind.LLM_CALL, "context_compression", model=model, compressed_messages=len(older)
    ) as span:
        request = LLMRequest(
            model=model,
            messages=prompt,
            temperature=0.0,
            timeout=deps.deadline.cap(agent.retry_options.attempt_timeout),
        )
        response, usage = await side_call(deps, state, request)
        span.set(**usage_attributes(usage))
    summary = {"role": "user", "content": SUMMARY_PREFIX + (response.text or "").strip()}
    state.messages[start:cut] = [summary]
    return True
