"""The first messages of an LLM run: system prompt with `{var}`s, and the payload as text.

Payload rules (AGENT_FORMAT.md "Payloads"): a plain `message` reaches the model as
text, any other object (minus `files`) as JSON; files are listed by name and MIME type
only — their bytes stay in `context["payload"]`, where tools read them. A PDF in the
prompt would cost thousands of tokens and bypass the tools that know how to read it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_system_prompt(template: str, context: Mapping[str, Any]) -> str:
    """Replace `{var}` by `context[var]`; unknown placeholders (and JSON braces) stay."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in context:
            return match.group(0)
        value = context[name]
        return value if isinstance(value, str) else json.dumps(value, default=str)

    return _PLACEHOLDER.sub(substitute, template)


def user_message_text(payload: Mapping[str, Any]) -> str:
    files = payload.get("files")
    rest = {k: v for k, v in payload.items() if k != "files"}
    if set(rest) == {"message"} and isinstance(rest["message"], str):
        text = rest["message"]
    elif rest:
        text = json.dumps(rest, ensure_ascii=False, default=str)
    else:
        text = ""
    if isinstance(files, list) and files:
        listing = "\n".join(
            f"- {f.get('name', '(unnamed)')} ({f.get('mime_type', 'application/octet-stream')})"
            for f in files
            if isinstance(f, Mapping)
        )
        note = (
            "Attached files (their content is not shown here; use your tools with the file "
            f"name to read them):\n{listing}"
        )
        text = f"{text}\n\n{note}" if text else note
    return text


def initial_messages(
    system_prompt: str, payload: Mapping[str, Any], history: Sequence[Mapping[str, str]] = ()
) -> list[dict[str, Any]]:
    """`history`: the conversation before this message (a chat), oldest first."""
    return [
        {"role": "system", "content": system_prompt},
        *({"role": turn["role"], "content": turn["content"]} for turn in history),
        {"role": "user", "content": user_message_text(payload)},
    ]
