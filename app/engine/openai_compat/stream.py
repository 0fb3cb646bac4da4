"""A streamed chat completion folded back into the body a non-streaming call would have returned.

Both model paths stream the same protocol (server-sent `chat.completion.chunk`s, litellm's
chunk objects dumped to dicts), so one fold serves both, and the folded body goes through
the same `parse_completion` as any other answer: a streamed run ends with exactly the
response, usage and cost it would have had without streaming.

What the protocol sends, and what the fold keeps:
- text as `choices[0].delta.content` pieces (returned by `add` for the caller to pass on);
- tool calls as deltas addressed by `index`: the first carries id and name, the rest
  append to `function.arguments`;
- `finish_reason` on the last choice chunk; `usage` on a final chunk with no choices
  (`stream_options.include_usage`), which some servers omit (usage then counts 0);
- `model` on every chunk (the model that answered, for pricing).
"""

from __future__ import annotations

from typing import Any


class CompletionFold:
    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model: str | None = None
        self.chunks = 0

    def add(self, chunk: Any) -> str:
        """Take one decoded chunk; return the text it adds ("" for none)."""
        if not isinstance(chunk, dict):
            return ""
        self.chunks += 1
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self._model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            self._finish = choice["finish_reason"]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return ""
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._add_call(call)
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._text.append(text)
            return text
        return ""

    def _add_call(self, delta: dict[str, Any]) -> None:
        index = delta.get("index")
        slot = self._calls.setdefault(
            index if isinstance(index, int) else len(self._calls),
            {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
        )
        if delta.get("id"):
            slot["id"] = delta["id"]
        function = delta.get("function")
        if isinstance(function, dict):
            if function.get("name"):
                slot["function"]["name"] += function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                slot["function"]["arguments"] += arguments
            elif arguments is not None:  # an object in one piece (older Ollama)
                slot["function"]["arguments"] = arguments

    def completion(self) -> dict[str, Any]:
        """The body a non-streaming call would have answered."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text) if self._text else None}
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
        body: dict[str, Any] = {"choices": [{"index": 0, "message": message, "finish_reason": self._finish}]}
        if self._model:
            body["model"] = self._model
        if self._usage is not None:
            body["usage"] = self._usage
        return body
