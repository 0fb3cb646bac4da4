"""documents.parse_pdf and documents.extract_text_from_image on the committed sample invoices."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from .conftest import SAMPLES, context_with, samples

PDFS, PNGS = samples("pdf"), samples("png")


def printed(value: float) -> str:
    return f"{Decimal(str(value)):,.2f}"


def test_there_are_at_least_two_samples_of_each_kind() -> None:
    assert len(PDFS) >= 2 and len(PNGS) >= 2


@pytest.mark.parametrize("sample", PDFS, ids=lambda s: s["file"])
def test_parse_pdf_recovers_the_text(tool: Callable[[str], Any], sample: dict[str, Any]) -> None:
    result = tool("documents.parse_pdf")(sample["file"], context=context_with(sample["path"]))
    expected = sample["expected"]
    assert result["pages"] == 1
    text = result["text"]
    for value in (expected["vendor"], expected["invoice_number"], expected["invoice_date"]):
        assert value in text
    for item in expected["line_items"]:
        assert item["description"] in text and printed(item["amount"]) in text
    for key in ("subtotal", "tax", "total"):
        assert printed(expected[key]) in text


@pytest.fixture(scope="module")
def ocr_texts(tool: Callable[[str], Any]) -> dict[str, str]:
    """OCR each PNG once: Tesseract takes about a second per page."""
    # No skip when Tesseract is missing: `make test` installs it, and a run without it
    # would hide that the OCR tool cannot work on this machine.
    func = tool("documents.extract_text_from_image")
    return {s["file"]: func(s["file"], context=context_with(s["path"]))["text"] for s in PNGS}


@pytest.mark.parametrize("sample", PNGS, ids=lambda s: s["file"])
def test_ocr_recovers_the_totals_of_the_scans(ocr_texts: dict[str, str], sample: dict[str, Any]) -> None:
    text = ocr_texts[sample["file"]]
    expected = sample["expected"]
    for key in ("subtotal", "tax", "total"):
        assert printed(expected[key]) in text, f"{key} {printed(expected[key])} not in OCR text:\n{text}"
    assert expected["invoice_number"] in text and expected["vendor"] in text


def test_a_missing_file_names_the_files_that_exist(tool: Callable[[str], Any]) -> None:
    pdf = PDFS[0]["path"]
    with pytest.raises(ValueError, match=rf"no file named 'other.pdf' in this request \(files: \['{pdf.name}'\]\)"):
        tool("documents.parse_pdf")("other.pdf", context=context_with(pdf))


def test_a_png_given_to_parse_pdf_is_a_clear_error(tool: Callable[[str], Any]) -> None:
    png = PNGS[0]["path"]
    with pytest.raises(ValueError, match="is not a readable PDF"):
        tool("documents.parse_pdf")(png.name, context=context_with(png))


def test_a_pdf_given_to_ocr_is_a_clear_error(tool: Callable[[str], Any]) -> None:
    pdf = PDFS[0]["path"]
    with pytest.raises(ValueError, match="is not a readable image"):
        tool("documents.extract_text_from_image")(pdf.name, context=context_with(pdf))


def test_bytes_travel_in_the_context_never_as_arguments(example_project) -> None:  # type: ignore[no-untyped-def]
    tools = {t.ref: t for t in example_project.tools_for("invoice-extractor")}
    for ref in ("documents.parse_pdf", "documents.extract_text_from_image"):
        assert tools[ref].takes_context
        assert list(tools[ref].parameters["properties"]) == ["file_name"]
    # The scorer reads the document the same way: by name, from the context.
    scorer = tools["scoring.score_invoice"]
    assert scorer.takes_context
    assert list(scorer.parameters["properties"]) == ["invoice", "file_name", "review_threshold"]
    assert SAMPLES.is_dir()


@pytest.mark.parametrize("sample", PNGS, ids=lambda s: s["file"])
def test_ocr_gives_every_word_with_its_confidence(tool: Callable[[str], Any], sample: dict[str, Any]) -> None:
    result = tool("documents.extract_text_from_image")(sample["file"], context=context_with(sample["path"]))
    words = result["words"]
    assert [w for w, _ in words] == result["text"].split()
    assert all(isinstance(c, int) and 0 <= c <= 100 for _, c in words)
    assert 80 < result["mean_confidence"] <= 100  # a clean scan
    total = printed(sample["expected"]["total"])
    assert any(w == total and c > 80 for w, c in words)
