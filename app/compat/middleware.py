"""Connic middleware around one run: `before(content, context)`, `after(response, context)`,
`cleanup(run, context)` (SDK `connic.core.Middleware`).

`before` sees the run input as Connic's user message, `{"role": "user", "parts": [...]}`
(a text part, then one `{"data", "mime_type", "name"}` part per file of the input), and
what it returns becomes the input the agent runs on: a changed text is the new message,
data parts are the input's files. Values it puts in `context` are the run's context:
`{var}` in the system prompt, tools' `context`, tool conditions. `StopProcessing` raised
in `before` or `after` (or in a tool) ends the run `completed` with its response, the
model not called when raised in `before`. `cleanup` runs last whatever the outcome; its
errors are logged and never change the run.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.compat.user_code import call_user
from app.contracts.errors import BadInputError

if TYPE_CHECKING:
    from connic.core import Middleware

log = logging.getLogger(__name__)


def middleware_error(message: str) -> BadInputError:
    """A middleware function raised (other than `StopProcessing`) or returned something unusable:
    the run fails `bad_input` with the middleware named, as Connic fails it."""
    return BadInputError(message)


def _text_of(payload: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in payload.items() if k != "files"}
    if set(rest) == {"message"} and isinstance(rest["message"], str):
        return str(rest["message"])
    return json.dumps(rest, ensure_ascii=False, default=str) if rest else ""


def content_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    text = _text_of(payload)
    if text:
        parts.append({"text": text})
    for file in payload.get("files") or []:
        if not isinstance(file, Mapping):
            continue
        try:
            data = base64.b64decode(str(file.get("data", "")), validate=False)
        except (binascii.Error, ValueError):
            data = b""
        parts.append(
            {"data": data, "mime_type": file.get("mime_type", "application/octet-stream"), "name": file.get("name")}
        )
    return {"role": "user", "parts": parts}


def payload_of(content: Any, original: Mapping[str, Any]) -> dict[str, Any]:
    """The input the agent runs on after `before` returned `content`."""
    if content is None:
        return dict(original)
    if not isinstance(content, Mapping) or not isinstance(content.get("parts"), list):
        raise middleware_error('middleware before() must return the content dict ({"role", "parts": [...]})')
    texts: list[str] = []
    files: list[dict[str, Any]] = []
    for index, part in enumerate(content["parts"]):
        if not isinstance(part, Mapping):
            continue
        if "text" in part:
            texts.append(str(part["text"]))
        elif "data" in part:
            data = part["data"]
            raw = data if isinstance(data, bytes) else str(data).encode()
            files.append(
                {
                    "name": part.get("name") or f"attachment-{index}",
                    "mime_type": part.get("mime_type") or "application/octet-stream",
                    "data": base64.b64encode(raw).decode(),
                }
            )
    text = "\n".join(texts)
    payload: dict[str, Any] = dict(original) if text == _text_of(original) else {"message": text}
    if files:
        payload["files"] = files
    else:
        payload.pop("files", None)
    return payload


async def run_before(middleware: Middleware | None, payload: Mapping[str, Any], context: dict[str, Any]) -> Any:
    if middleware is None or middleware.before is None:
        return dict(payload)
    content = await call_user(middleware.before, content_of(payload), context=context)
    return payload_of(content, payload)


async def run_after(middleware: Middleware | None, output: Any, context: dict[str, Any]) -> Any:
    if middleware is None or middleware.after is None:
        return output
    return await call_user(middleware.after, output, context=context)


async def run_cleanup(middleware: Middleware | None, run: dict[str, Any], context: dict[str, Any]) -> None:
    if middleware is None or middleware.cleanup is None:
        return
    try:
        await call_user(middleware.cleanup, run, context=context)
    except Exception:  # never changes the run: reported and dropped, as the SDK documents
        log.exception("middleware cleanup of run %s raised", run.get("run_id"))
