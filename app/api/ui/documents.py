"""A run's input or output made fit to show: documents by name, type and size, never their bytes.

A document travels as `{"name", "mime_type", "data": <base64>}` (the `files` form tools
read). Shown as it is, one PDF is a megabyte of noise in the page; so every such object
becomes a `Document` and its place in the value says `[document: name]`. A long string
that is plainly base64 without a name around it is shortened the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

#: Strings longer than this that are all base64 characters are taken for encoded bytes.
_BASE64_MIN_CHARS = 256
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
#: What the page shows of a value at most; the rest is cut with a note.
MAX_SHOWN_CHARS = 20_000


@dataclass(frozen=True)
class Document:
    name: str
    mime_type: str
    size_bytes: int


@dataclass(frozen=True)
class Shown:
    """A value as the page shows it: pretty JSON (or text) without bytes, and its documents."""

    text: str
    documents: list[Document]
    clipped: bool


def show_value(value: Any) -> Shown:
    documents: list[Document] = []
    cleaned = _strip(value, documents)
    text = cleaned if isinstance(cleaned, str) else json.dumps(cleaned, indent=2, ensure_ascii=False, default=str)
    clipped = len(text) > MAX_SHOWN_CHARS
    return Shown(text[:MAX_SHOWN_CHARS], documents, clipped)


def _strip(value: Any, documents: list[Document]) -> Any:
    if isinstance(value, dict):
        data = value.get("data")
        if isinstance(data, str) and ("name" in value or "mime_type" in value):
            document = Document(
                name=str(value.get("name") or "(unnamed)"),
                mime_type=str(value.get("mime_type") or "application/octet-stream"),
                size_bytes=_decoded_size(data),
            )
            documents.append(document)
            rest = {k: _strip(v, documents) for k, v in value.items() if k not in ("data", "name", "mime_type")}
            return {"document": document.name, "type": document.mime_type, **rest}
        return {str(k): _strip(v, documents) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip(item, documents) for item in value]
    if isinstance(value, str) and len(value) >= _BASE64_MIN_CHARS and _BASE64.match(value):
        return f"[base64, about {_decoded_size(value):,} bytes]"
    return value


def _decoded_size(data: str) -> int:
    compact = len("".join(data.split()))
    return max(0, compact * 3 // 4 - data.rstrip().count("=", max(0, len(data.rstrip()) - 2)))
