"""The offline demo reads the invoice layouts people actually send.

Each document is drawn here (PDFs with reportlab, one scan with Pillow), read by the
example project's own tool (`parse_pdf`, or Tesseract through `extract_text_from_image`)
and parsed by the scenario from that tool text only, as a model would read it.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from app.contracts import document_input
from app.devstack.llm_sim import JsonReply, ToolCallsReply
from app.devstack.scenarios.invoice import invoice_rules, parse_invoice_text
from app.project import Project, load_project

ROOT = Path(__file__).resolve().parents[3]

#: (layout, the lines printed, what the scenario must read: subtotal, tax, total, currency)
LAYOUTS: list[tuple[str, list[str], tuple[float, float, float, str]]] = [
    (
        "english-colons-symbol-before-thousands",
        ["Invoice number: US-1001", "Invoice date: 2024-09-03", "Subtotal: $1,234.50", "Tax (8%): $98.76",
         "Total: $1,333.26"],
        (1234.50, 98.76, 1333.26, "USD"),
    ),
    (
        "english-no-colons-code-after",
        ["Invoice no. GB-77", "Sub-total 2,000.00 GBP", "VAT 20% 400.00 GBP", "Amount due 2,400.00 GBP"],
        (2000.00, 400.00, 2400.00, "GBP"),
    ),
    (
        "english-code-before-label-and-value-on-own-lines",
        ["Invoice number: X-9", "Subtotal", "EUR 99.00", "Tax", "EUR 18.81", "Total", "EUR 117.81"],
        (99.00, 18.81, 117.81, "EUR"),
    ),
    (
        "german-decimal-comma-symbol-after",
        ["Rechnungsnummer: RE-2024-17", "Rechnungsdatum: 03.09.2024", "Zwischensumme: 1.234,50 €",
         "MwSt. 19 %: 234,56 €", "Gesamtbetrag: 1.469,06 €"],
        (1234.50, 234.56, 1469.06, "EUR"),
    ),
    (
        "german-no-colons-ust-code-before",
        ["Rechnung Nr. 4711", "Nettobetrag EUR 850,00", "USt 19% EUR 161,50", "Rechnungsbetrag EUR 1.011,50"],
        (850.00, 161.50, 1011.50, "EUR"),
    ),
    (
        "french-space-thousands-ttc",
        ["Facture n° F-2024-88", "Date de facture : 12/03/2024", "Sous-total : 1 234,50 €", "TVA (20 %) : 246,90 €",
         "Total TTC : 1 481,40 €"],
        (1234.50, 246.90, 1481.40, "EUR"),
    ),
    (
        "french-total-ht-is-the-subtotal",
        ["Numéro de facture : F-9", "Total HT 500,00 EUR", "TVA 100,00 EUR", "Total TTC 600,00 EUR"],
        (500.00, 100.00, 600.00, "EUR"),
    ),
    (
        "swiss-apostrophe-thousands",
        ["Invoice number: CH-3", "Subtotal CHF 12'000.00", "VAT 8.1% CHF 972.00", "Total CHF 12'972.00"],
        (12000.00, 972.00, 12972.00, "CHF"),
    ),
]  # fmt: skip


def _pdf(lines: Sequence[str]) -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setFont("Helvetica", 11)
    y = 800
    for line in ["Layout Test Supplies", *lines]:
        page.drawString(60, y, line)
        y -= 20
    page.save()
    return out.getvalue()


def _png(lines: Sequence[str]) -> bytes:
    image = Image.new("L", (1654, 80 + 70 * (len(lines) + 1)), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    for row, line in enumerate(["Layout Test Supplies", *lines]):
        draw.text((120, 40 + 70 * row), line, font=font, fill=0)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="module")
def read(project: Project) -> Callable[[str, bytes], str]:
    """The text the extractor's own tool returns for a document: all the scenario may read."""
    tools = {t.name: t.func for t in project.agents["invoice-extractor"].resolved_tools}

    def text_of(name: str, data: bytes) -> str:
        tool = tools["parse_pdf" if name.endswith(".pdf") else "extract_text_from_image"]
        return str(tool(name, context={"payload": document_input(name, data)})["text"])

    return text_of


@pytest.mark.parametrize(("layout", "lines", "expected"), LAYOUTS, ids=[layout for layout, _, _ in LAYOUTS])
def test_the_scenario_reads_subtotal_tax_and_total_of_each_layout(
    read: Callable[[str, bytes], str], layout: str, lines: list[str], expected: tuple[float, float, float, str]
) -> None:
    invoice = parse_invoice_text(read(f"{layout}.pdf", _pdf(lines)))
    subtotal, tax, total, currency = expected
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (subtotal, tax, total)
    assert invoice["currency"] == currency
    assert invoice["vendor"] == "Layout Test Supplies"
    assert invoice["invoice_number"] == lines[0].split()[-1]


def test_dates_of_each_language_are_read_as_printed(read: Callable[[str, bytes], str]) -> None:
    by_layout = {layout: parse_invoice_text(read(f"{layout}.pdf", _pdf(lines))) for layout, lines, _ in LAYOUTS}
    assert by_layout["english-colons-symbol-before-thousands"]["invoice_date"] == "2024-09-03"
    assert by_layout["german-decimal-comma-symbol-after"]["invoice_date"] == "03.09.2024"
    assert by_layout["french-space-thousands-ttc"]["invoice_date"] == "12/03/2024"
    assert by_layout["english-no-colons-code-after"]["invoice_date"] == "unclear"  # not printed: not guessed


def test_a_scanned_german_invoice_is_read_through_ocr(read: Callable[[str, bytes], str]) -> None:
    # Tesseract's English model reads this font's "MwSt" as "MwsSt": the scan spells it out.
    lines = [
        "Rechnungsnummer RE-88",
        "Zwischensumme 1.234,50 EUR",
        "Mehrwertsteuer 19% 234,56 EUR",
        "Gesamt 1.469,06 EUR",
    ]
    invoice = parse_invoice_text(read("scan.png", _png(lines)))
    assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["currency"]) == (
        1234.50,
        234.56,
        1469.06,
        "EUR",
    )


def test_a_percentage_is_never_read_as_the_amount() -> None:
    invoice = parse_invoice_text("Shop\nSubtotal 100.00\nTax (20%)\nTotal 120.00")
    assert invoice["tax"] == "unclear"  # only the rate is printed: the model would not invent the tax
    assert (invoice["subtotal"], invoice["total"]) == (100.0, 120.0)


def test_the_rules_play_read_score_answer_then_validate(project: Project) -> None:
    lines = LAYOUTS[3][1]
    rules = invoice_rules(project, document_input("de.pdf", _pdf(lines)))
    assert [rule.name for rule in rules] == [
        "validate-answer RE-2024-17",
        "validate-call RE-2024-17",
        "extract-answer de.pdf",
        "extract-score de.pdf",
        "extract-read de.pdf",
    ]
    score = rules[3].reply
    assert isinstance(score, ToolCallsReply) and score.calls[0].name == "score_invoice"
    arguments: dict[str, Any] = dict(score.calls[0].arguments)  # type: ignore[arg-type]
    assert arguments["file_name"] == "de.pdf" and arguments["review_threshold"] == 0.8  # as the prompt says
    assert arguments["invoice"]["total"] == 1469.06
    answer = rules[2].reply
    assert isinstance(answer, JsonReply)
    confidence = answer.data["confidence"]
    assert confidence["fields"]["total"]["confidence"] == 1.0 and confidence["needs_review"] is False


def test_the_review_threshold_is_the_one_the_extractors_prompt_names(tmp_path: Path) -> None:
    """A user raises the threshold in agents/invoice-extractor.yaml, no code: the scenario's
    model passes the new number, and a clean scan (OCR never certain) now needs review."""
    for folder in ("agents", "tools", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    extractor = tmp_path / "agents" / "invoice-extractor.yaml"
    prompt = extractor.read_text()
    assert "review_threshold 0.8" in prompt
    extractor.write_text(prompt.replace("review_threshold 0.8", "review_threshold 0.99"))
    lines = ["Invoice number: SC-1", "Subtotal 100.00", "Tax 20.00", "Total 120.00"]
    rules = invoice_rules(load_project(tmp_path), document_input("scan.png", _png(lines)))
    score = next(rule.reply for rule in rules if rule.name == "extract-score scan.png")
    assert isinstance(score, ToolCallsReply) and score.calls[0].arguments["review_threshold"] == 0.99  # type: ignore[index]
    answer = next(rule.reply for rule in rules if rule.name == "extract-answer scan.png")
    assert isinstance(answer, JsonReply)
    assert answer.data["confidence"]["needs_review"] is True and "total" in answer.data["confidence"]["unsure_fields"]
