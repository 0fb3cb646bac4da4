"""scoring.score_invoice: per-field confidences from the document, not from the model.

The scans are drawn here with Pillow and read by the real Tesseract (as `make test`
installs it): a clean one and the same page blurred, which must come out needing review
with its unsure fields named.
"""

from __future__ import annotations

import base64
import copy
import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .conftest import SAMPLES, context_with

Score = Callable[..., dict[str, Any]]

TRUTH = {
    "vendor": "Harbour Tools Ltd",
    "invoice_number": "HT-5521",
    "invoice_date": "2024-09-03",
    "currency": "EUR",
    "line_items": [
        {"description": "Cordless drill", "quantity": 2, "unit_price": 149.0, "amount": 298.0},
        {"description": "Drill bits set", "quantity": 3, "unit_price": 24.5, "amount": 73.5},
    ],
    "subtotal": 371.5,
    "tax": 74.3,
    "total": 445.8,
}
PAGE = [
    "Harbour Tools Ltd",
    "Invoice number: HT-5521",
    "Invoice date: 2024-09-03",
    "Currency: EUR",
    "",
    "Description Qty Unit price Amount",
    "Cordless drill 2 149.00 298.00",
    "Drill bits set 3 24.50 73.50",
    "Subtotal 371.50",
    "Tax (20%) 74.30",
    "Total EUR 445.80",
]
SCORED_FIELDS = {
    "vendor",
    "invoice_number",
    "invoice_date",
    "currency",
    "line_items[0].amount",
    "line_items[1].amount",
    "subtotal",
    "tax",
    "total",
}


def _png(blur: float = 0) -> bytes:
    image = Image.new("L", (1654, 1100), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=34)
    for row, line in enumerate(PAGE):
        draw.text((120, 80 + 70 * row), line, font=font, fill=0)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _context(name: str, data: bytes) -> dict[str, Any]:
    files = [{"name": name, "mime_type": "image/png", "data": base64.b64encode(data).decode()}]
    return {"run_id": "run-1", "payload": {"files": files}}


@pytest.fixture(scope="module")
def score(tool: Callable[[str], Callable[..., Any]]) -> Score:
    return tool("scoring.score_invoice")


@pytest.fixture(scope="module")
def clean_scan(score: Score) -> dict[str, Any]:
    return score(copy.deepcopy(TRUTH), "clean.png", context=_context("clean.png", _png()))


@pytest.fixture(scope="module")
def blurred_scan(score: Score) -> dict[str, Any]:
    return score(copy.deepcopy(TRUTH), "blurred.png", context=_context("blurred.png", _png(blur=4)))


def _sample(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    truth = json.loads((SAMPLES / name).with_suffix(".json").read_text())["expected"]
    return truth, context_with(SAMPLES / name)


def test_a_clean_scan_is_sure_of_every_field_from_ocr_confidences(clean_scan: dict[str, Any]) -> None:
    confidence = clean_scan["confidence"]
    assert set(confidence["fields"]) == SCORED_FIELDS
    assert confidence["needs_review"] is False and confidence["unsure_fields"] == []
    assert confidence["source"]["read_by"] == "ocr" and confidence["source"]["ocr_mean_confidence"] > 85
    for name, field in confidence["fields"].items():
        assert 0.8 <= field["confidence"] < 1, name  # OCR is never certain
        assert any(e.startswith("OCR word confidence") for e in field["evidence"]), name
    assert "on the line labelled total" in confidence["fields"]["total"]["evidence"]
    assert "passes the check subtotal + tax = total" in confidence["fields"]["total"]["evidence"]


def test_a_blurred_scan_needs_review_with_its_unsure_fields_named(
    blurred_scan: dict[str, Any], clean_scan: dict[str, Any]
) -> None:
    confidence = blurred_scan["confidence"]
    assert confidence["needs_review"] is True
    unsure = confidence["unsure_fields"]
    assert unsure and set(unsure) <= SCORED_FIELDS
    assert {"subtotal", "tax", "total"} & set(unsure), unsure
    for name in unsure:
        assert confidence["fields"][name]["confidence"] < confidence["review_threshold"]
    assert confidence["overall"] < clean_scan["confidence"]["overall"]


def test_the_invoice_comes_back_unchanged_beside_its_confidence(clean_scan: dict[str, Any]) -> None:
    assert {k: v for k, v in clean_scan.items() if k != "confidence"} == TRUTH


def test_a_pdf_read_right_is_certain(score: Score) -> None:
    truth, context = _sample("acme-a-7781.pdf")
    confidence = score(truth, "acme-a-7781.pdf", context=context)["confidence"]
    assert confidence["overall"] == 1.0 and confidence["needs_review"] is False
    assert confidence["source"] == {"file_name": "acme-a-7781.pdf", "read_by": "pdf_text", "ocr_mean_confidence": None}
    # The PDF puts "Tax (20%)" and 164.87 on lines of their own: the label is still found.
    assert "on the line labelled tax" in confidence["fields"]["tax"]["evidence"]


def test_a_misread_total_is_caught_by_the_document_and_the_arithmetic(score: Score) -> None:
    truth, context = _sample("acme-a-7781.pdf")
    misread = {**truth, "total": 998.24}
    confidence = score(misread, "acme-a-7781.pdf", context=context)["confidence"]
    total = confidence["fields"]["total"]
    assert total["confidence"] == pytest.approx(0.2 * 0.5)
    assert "998.24 is not in the document text" in total["evidence"]
    assert any(e.startswith("fails the check subtotal + tax = total") for e in total["evidence"])
    assert confidence["unsure_fields"] == ["total"] and confidence["needs_review"] is True
    # subtotal and tax take part in the failed check too, but the document shows both where labelled
    tax = confidence["fields"]["tax"]
    assert tax["confidence"] == 1.0
    assert "in the failed check subtotal + tax = total, less doubtful than the others" in tax["evidence"]


def test_a_value_the_document_prints_as_another_field_is_doubted(score: Score) -> None:
    truth, context = _sample("acme-a-7781.pdf")
    swapped = {**truth, "total": truth["subtotal"]}  # 824.37 is printed, as the subtotal
    total = score(swapped, "acme-a-7781.pdf", context=context)["confidence"]["fields"]["total"]
    assert "the document labels it as the subtotal" in total["evidence"]
    assert total["confidence"] < 0.5


def test_unclear_fields_score_zero_and_need_review(score: Score) -> None:
    truth, context = _sample("acme-a-7781.pdf")
    confidence = score({**truth, "vendor": "unclear", "tax": "unclear"}, "acme-a-7781.pdf", context=context)[
        "confidence"
    ]
    assert confidence["fields"]["vendor"] == {"confidence": 0.0, "evidence": ["the model marked it unclear"]}
    assert confidence["fields"]["tax"]["confidence"] == 0.0
    assert confidence["unsure_fields"] == ["vendor", "tax"]


def test_the_review_threshold_is_the_callers(score: Score, clean_scan: dict[str, Any]) -> None:
    strict = score(copy.deepcopy(TRUTH), "clean.png", review_threshold=0.99, context=_context("clean.png", _png()))
    assert strict["confidence"]["review_threshold"] == 0.99
    assert strict["confidence"]["needs_review"] is True
    assert set(strict["confidence"]["unsure_fields"]) == SCORED_FIELDS  # no OCR'd field reaches 0.99
    assert strict["confidence"]["fields"] == clean_scan["confidence"]["fields"]  # same document, same scores
    with pytest.raises(ValueError, match="review_threshold must be between 0 and 1"):
        score(copy.deepcopy(TRUTH), "clean.png", review_threshold=80, context=_context("clean.png", _png()))


def test_scoring_twice_gives_the_same_numbers(score: Score) -> None:
    truth, context = _sample("northwind-inv-2024-001.pdf")
    first = score(truth, "northwind-inv-2024-001.pdf", context=context)
    again = score(first, "northwind-inv-2024-001.pdf", context=context)  # a scored invoice is scored afresh
    assert again == first


@pytest.mark.parametrize(
    ("printed", "value"),
    [
        ("1,234.56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("1 234,56", "1234.56"),
        ("1'234.56", "1234.56"),
        ("€12,50", "12.50"),
        ("12.50 EUR", "12.50"),
        ("EUR 1 234,56", "1234.56"),
        ("(12.00)", "-12.00"),
        ("1.234", "1234"),
        ("20%", None),
        ("A-7781", None),
        ("2024-07-12", None),
    ],
)
def test_amounts_are_compared_as_numbers_whatever_their_format(score: Score, printed: str, value: str | None) -> None:
    parse_amount = score.__globals__["_parse_amount"]  # the tool module's own helper, as the engine loaded it
    parsed = parse_amount(printed)
    assert (None if parsed is None else parsed.normalize()) == (None if value is None else Decimal(value).normalize())
