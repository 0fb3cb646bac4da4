"""The example project's tools, loaded the way the engine loads them, and its sample invoices."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.project import Project, load_project

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLES = REPO_ROOT / "samples" / "invoices"


@pytest.fixture(scope="session")
def example_project() -> Project:
    return load_project(REPO_ROOT)


@pytest.fixture(scope="session")
def tool(example_project: Project) -> Callable[[str], Callable[..., Any]]:
    """`tool("documents.parse_pdf")` → the function the engine would call."""
    by_ref = {t.ref: t.func for name in example_project.agents for t in example_project.tools_for(name)}
    return by_ref.__getitem__


def samples(kind: str) -> list[dict[str, Any]]:
    """The truth files of one kind of sample (pdf or png), each with its document's path."""
    found = []
    for truth_file in sorted(SAMPLES.glob("*.json")):
        truth = json.loads(truth_file.read_text())
        if truth["file"].endswith(f".{kind}"):
            found.append({**truth, "path": SAMPLES / truth["file"]})
    return found


def context_with(*paths: Path) -> dict[str, Any]:
    """A run context whose payload carries the files as a request's `input.files` does."""
    files = [
        {"name": p.name, "mime_type": "application/octet-stream", "data": base64.b64encode(p.read_bytes()).decode()}
        for p in paths
    ]
    return {"run_id": "run-1", "agent_name": "invoice-extractor", "payload": {"files": files}}
