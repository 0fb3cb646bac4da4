"""The invoice scenario reads every sample with the project's own tools, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.contracts import document_input
from app.devstack.scenarios.invoice import DOCUMENT_SUFFIXES, parse_invoice_text
from app.project import load_project

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted(p for p in (ROOT / "samples" / "invoices").iterdir() if p.suffix in DOCUMENT_SUFFIXES)


@pytest.fixture(scope="module")
def extractor_tools() -> dict:
    project = load_project(ROOT)
    return {t.name: t.func for t in project.agents["invoice-extractor"].resolved_tools}


@pytest.mark.parametrize("document", SAMPLES, ids=lambda p: p.name)
def test_tool_text_parses_to_the_true_invoice(document: Path, extractor_tools: dict) -> None:
    tool = extractor_tools["parse_pdf" if document.suffix == ".pdf" else "extract_text_from_image"]
    text = tool(document.name, context={"payload": document_input(document.name, document.read_bytes())})["text"]
    expected = json.loads(document.with_suffix(".json").read_text())["expected"]
    assert parse_invoice_text(text) == expected


def test_unreadable_fields_are_unclear() -> None:
    invoice = parse_invoice_text("Some Shop\nINVOICE\nTotal 12.00")
    assert invoice["vendor"] == "Some Shop" and invoice["total"] == 12.0
    assert invoice["invoice_number"] == "unclear" and invoice["subtotal"] == "unclear"
    assert invoice["line_items"] == []
