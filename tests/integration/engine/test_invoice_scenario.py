"""The invoice scenario reads every sample with the project's own tools, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.contracts import document_input
from app.devstack.scenarios.invoice import DOCUMENT_SUFFIXES, invoice_rules, parse_invoice_text, scenario_applies
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


def test_the_scenario_scripts_the_example_and_skips_a_document_its_tools_cannot_read() -> None:
    project = load_project(ROOT)
    assert scenario_applies(project)
    sample = SAMPLES[0]
    readable = invoice_rules(project, document_input(sample.name, sample.read_bytes()))
    assert len(readable) == 5  # extractor read + score + answer, validator call + answer
    junk = invoice_rules(project, document_input("junk.pdf", b"%PDF-1.4 not really a pdf"))
    assert junk == []  # the run itself calls the tool and reports its error


def test_a_project_with_only_an_agent_named_invoice_extractor_is_not_the_example(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "invoice-extractor.yaml").write_text(
        'version: "1.0"\nname: invoice-extractor\ndescription: d\nmodel: openai/m\nsystem_prompt: s\n'
    )
    project = load_project(tmp_path)
    assert not scenario_applies(project)
    with pytest.raises(LookupError, match="not the invoice example"):
        invoice_rules(project, {"files": [{"name": "a.pdf", "mime_type": "application/pdf", "data": ""}]})
