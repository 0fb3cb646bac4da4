"""A case's run input: its `payload`, its `files` and its `builder`, as Connic builds them.

- `payload` is text; when it parses as a JSON object that object is the input, any other
  text arrives as `{"message": <text>}`.
- `files` (names under `tests/files/`) are attached as `input.files`, each
  `{name, mime_type, data}` with the bytes in base64: the form Ferry's tools read
  attachments in, next to the payload's own keys.
- `builder` names `tests/builders/<name>.py`, whose
  `build(context, builder_args, test_name, payload, files)` returns the input (text or
  an object) in place of `payload`, and whose optional `cleanup(run, context, builder_args)`
  runs after the run (pass or fail); returning False fails the run. `context` is a dict
  of the run's own, also bound as `context` in the case's expressions.
"""

from __future__ import annotations

import base64
import inspect
import json
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from app.agent_tests.discovery import TESTS_DIR


def input_from(payload: Any, files: list[dict[str, Any]]) -> dict[str, Any]:
    parsed: Any = payload
    if isinstance(payload, str):
        try:
            parsed = json.loads(payload)
        except json.JSONDecodeError:
            parsed = payload
    run_input: dict[str, Any] = dict(parsed) if isinstance(parsed, Mapping) else {}
    if not isinstance(parsed, Mapping) and payload is not None:
        run_input["message"] = payload if isinstance(payload, str) else json.dumps(payload)
    if files:
        run_input["files"] = files
    return run_input


def attached_files(project_root: Path, names: list[str]) -> list[dict[str, Any]]:
    entries = []
    for name in names:
        data = (project_root / TESTS_DIR / "files" / name).read_bytes()
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        entries.append({"name": name, "mime_type": mime, "data": base64.b64encode(data).decode()})
    return entries


@dataclass
class PreparedInput:
    """One run's input and the builder state its assertions and cleanup see."""

    input: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)


async def prepare_input(
    project_root: Path,
    settings: Mapping[str, Any],
    builder: ModuleType | None,
) -> PreparedInput:
    files = attached_files(project_root, list(settings.get("files") or []))
    context: dict[str, Any] = {}
    payload: Any = settings.get("payload")
    if builder is not None:
        built = builder.build(
            context, dict(settings.get("builder_args") or {}), settings["name"], payload, list(settings["files"] or [])
        )
        if inspect.isawaitable(built):
            built = await built
        payload = built
    return PreparedInput(input=input_from(payload, files), context=context)


async def clean_up(
    builder: ModuleType | None, run: dict[str, Any], prepared: PreparedInput, settings: Mapping[str, Any]
) -> str | None:
    """The builder's `cleanup`; the failure it reports, if any."""
    cleanup = getattr(builder, "cleanup", None) if builder is not None else None
    if not callable(cleanup):
        return None
    try:
        verdict = cleanup(run, prepared.context, dict(settings.get("builder_args") or {}))
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Exception as exc:
        return f"builder cleanup raised {type(exc).__name__}: {exc}"
    return "builder cleanup returned False" if verdict is False else None
