"""The final answer against the agent's output schema: parse, validate, explain.

Models wrap JSON in prose or in a ```json fence; both are tolerated. A violation is
returned as a message meant for the model (path + reason), so the loop can send it
back while retry attempts remain (AGENT_FORMAT.md "Output schema"). jsonschema (~2 MiB
with its format checkers) is imported by the first answer validated: a worker whose
agents have no output schema never loads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Validation:
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_json_answer(text: str) -> Any:
    """The JSON value in `text`: the whole text, a fenced block, or the outermost {...}."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    last_error: json.JSONDecodeError | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            last_error = exc
    raise ValueError(f"the answer is not valid JSON ({last_error.msg if last_error else 'empty'})")


def validate_answer(text: str | None, schema: Mapping[str, Any]) -> Validation:
    if not text or not text.strip():
        return Validation(error="the answer is empty; a JSON object was expected")
    try:
        value = parse_json_answer(text)
    except ValueError as exc:
        return Validation(error=str(exc))
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        described = "; ".join(_describe(e) for e in errors[:5])
        return Validation(value=value, error=f"the answer does not match the output schema: {described}")
    return Validation(value=value)


def _describe(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {path}: {error.message}"


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """Appended to the system prompt so the model knows the contract it will be held to."""
    return (
        "\n\nYour final answer must be a single JSON object, with no other text, that "
        "validates against this JSON Schema:\n" + json.dumps(schema, indent=None, sort_keys=True)
    )


def reask_message(error: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": f"Your previous answer was rejected: {error}. Answer again with only the corrected JSON object.",
    }
