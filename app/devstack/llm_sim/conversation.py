"""Reading an OpenAI chat request: message texts, tool results, and token counts.

Token counts are whitespace-split words, not a real tokenizer: tests need numbers that
are deterministic and easy to predict by hand, not numbers that match a vendor.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from app.devstack.llm_sim.rules import Match


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whether `content` is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


@dataclass(frozen=True)
class Conversation:
    """What the rule predicates look at, computed once per request."""

    model: str
    texts: tuple[str, ...]
    last_user_text: str
    tool_results: frozenset[str]
    assistant_turns: int
    prompt_tokens: int

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Conversation:
        raw_messages = body.get("messages")
        messages = [m for m in raw_messages if isinstance(m, dict)] if isinstance(raw_messages, list) else []
        texts = tuple(message_text(m) for m in messages)
        users = [t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user"]
        return cls(
            model=str(body.get("model", "")),
            texts=texts,
            last_user_text=users[-1] if users else "",
            tool_results=_tool_results(messages),
            assistant_turns=sum(1 for m in messages if m.get("role") == "assistant"),
            prompt_tokens=_prompt_tokens(messages, texts, body.get("tools")),
        )

    def matches(self, match: Match, request_number: int) -> bool:
        checks = (
            match.model is None or match.model == self.model,
            match.last_user_contains is None or match.last_user_contains in self.last_user_text,
            match.last_user_regex is None or re.search(match.last_user_regex, self.last_user_text) is not None,
            match.any_message_contains is None or any(match.any_message_contains in t for t in self.texts),
            match.any_message_regex is None or any(re.search(match.any_message_regex, t) for t in self.texts),
            match.has_tool_result is None or match.has_tool_result in self.tool_results,
            match.assistant_turns is None or match.assistant_turns == self.assistant_turns,
            match.request_number is None or match.request_number == request_number,
        )
        return all(checks)


def count_words(text: str) -> int:
    return len(text.split())


def _tool_results(messages: list[dict[str, Any]]) -> frozenset[str]:
    """Tool names answered by a `tool` message; the name comes from the matching assistant call."""
    names_by_id: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names_by_id[str(call.get("id"))] = str(call["function"].get("name", ""))
    answered: set[str] = set()
    for message in messages:
        if message.get("role") == "tool":
            name = message.get("name") or names_by_id.get(str(message.get("tool_call_id")))
            if name:
                answered.add(str(name))
        elif message.get("role") == "function" and message.get("name"):
            answered.add(str(message["name"]))
    return frozenset(answered)


def _prompt_tokens(messages: list[dict[str, Any]], texts: tuple[str, ...], tools: Any) -> int:
    words = sum(count_words(t) for t in texts)
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                function = call["function"]
                words += count_words(f"{function.get('name', '')} {function.get('arguments', '')}")
    if tools:
        words += count_words(json.dumps(tools))
    return words
