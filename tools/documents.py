"""Document tools of the invoice pipeline: text out of PDFs and scanned images.

Documents reach a run as `input.files` ({name, mime_type, data in base64}); the LLM is
only told the file names, so these tools take a name and find the bytes in the run's
context. This keeps megabytes of base64 out of the prompt and out of the token bill.

OCR keeps Tesseract's confidence of every word: `scoring.score_invoice` weighs each
extracted value by how sure the OCR was of the words it was read from; the reading
itself is in `_document_text.py`, shared with the scorer.
"""

from __future__ import annotations

from typing import Any

from ._document_text import file_bytes, read_image, read_pdf


def parse_pdf(file_name: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract the text of a PDF document attached to the request, page by page.

    Works for PDFs with a text layer; a scanned PDF returns empty pages (use OCR then).

    Args:
        file_name: Name of the attached PDF file, as listed in the request's files.
    """
    document = read_pdf(file_name, file_bytes(file_name, context))
    return {"file_name": file_name, "pages": document.pages, "text": document.text}


def extract_text_from_image(file_name: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read the text of a scanned document or photo (PNG, JPEG, TIFF) attached to the request.

    Returns the text, Tesseract's mean word confidence (0-100) and each word with its
    confidence, as [word, confidence] pairs in reading order: a low one marks a word the
    OCR was unsure of.

    Args:
        file_name: Name of the attached image file, as listed in the request's files.
    """
    document = read_image(file_name, file_bytes(file_name, context))
    return {
        "file_name": file_name,
        "text": document.text,
        "mean_confidence": document.mean_confidence,
        "words": [[word.text, round(word.confidence or 0)] for word in document.words],
    }
