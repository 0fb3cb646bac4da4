"""`--input JSON|@file`, as `ferry run` and `ferry submit` take it.

A `.json` file is the input itself; any other file is a document, attached the way
AGENT_FORMAT.md's "Payloads" says (`{"files": [{name, mime_type, data}]}`, base64).
"""

from __future__ import annotations

import base64
import json
import mimetypes
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """--input is not JSON, not a readable file, or not what the agent takes."""


def read_input(spec: str) -> Any:
    if not spec.startswith("@"):
        try:
            return json.loads(spec)
        except json.JSONDecodeError as exc:
            raise InputError(f"--input is not valid JSON ({exc.msg}); use @file for a file") from None
    path = Path(spec[1:])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON ({exc.msg})") from None
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return {"files": [{"name": path.name, "mime_type": mime, "data": base64.b64encode(data).decode()}]}
