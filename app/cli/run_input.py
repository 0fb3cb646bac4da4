"""`--input JSON|@file`, as `ferry run` and `ferry submit` take it.

A `.json` file is the input itself; any other file is a document, attached the way
AGENT_FORMAT.md's "Payloads" says (`{"files": [{name, mime_type, data}]}`, base64).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.contracts import document_input
from app.contracts.errors import BadInputError


class InputError(BadInputError):
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
    return document_input(path.name, data)
