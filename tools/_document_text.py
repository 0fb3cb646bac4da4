"""Reading an attached document into text and words: a PDF's text layer, or OCR.

Shared by the document tools (`documents.py`, what the model calls) and the scorer
(`scoring.py`), so both see one reading of a document: the same text and, for a scan,
Tesseract's confidence of every word. Not a tool module (the leading `_`): nothing
here is offered to a model.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any, Literal

import pypdf
import pytesseract
from PIL import Image, ImageOps


def file_bytes(file_name: str, context: dict[str, Any] | None) -> bytes:
    payload = (context or {}).get("payload") or {}
    files = payload.get("files") or []
    for item in files:
        if isinstance(item, dict) and item.get("name") == file_name:
            try:
                return base64.b64decode(item.get("data") or "", validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"file {file_name!r} is not valid base64: {exc}") from exc
    names = [item.get("name") for item in files if isinstance(item, dict)]
    raise ValueError(f"no file named {file_name!r} in this request (files: {names})")


@dataclass(frozen=True)
class Word:
    """One word of a document as read: its line (0-based) and, from OCR, Tesseract's confidence."""

    text: str
    line: int
    confidence: float | None  # 0-100 from OCR; None for a PDF's text layer, which is exact


@dataclass(frozen=True)
class DocumentText:
    file_name: str
    source: Literal["pdf_text", "ocr"]
    text: str
    words: tuple[Word, ...]
    lines: tuple[str, ...]  # indexed by `Word.line`
    pages: int = 1

    @property
    def mean_confidence(self) -> float | None:
        scores = [w.confidence for w in self.words if w.confidence is not None]
        return round(sum(scores) / len(scores), 1) if scores else None


def read_document(file_name: str, context: dict[str, Any] | None) -> DocumentText:
    """The text of an attached document: a PDF's text layer, or OCR for anything else."""
    data = file_bytes(file_name, context)
    if data.startswith(b"%PDF") or file_name.lower().endswith(".pdf"):
        return read_pdf(file_name, data)
    return read_image(file_name, data)


def read_pdf(file_name: str, data: bytes) -> DocumentText:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except pypdf.errors.PyPdfError as exc:
        raise ValueError(f"{file_name!r} is not a readable PDF: {exc}") from exc
    text = "\n\n".join(pages).strip()
    lines = tuple(text.splitlines())
    words = tuple(Word(token, index, None) for index, line in enumerate(lines) for token in line.split())
    return DocumentText(file_name, "pdf_text", text, words, lines, pages=len(pages))


def read_image(file_name: str, data: bytes) -> DocumentText:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{file_name!r} is not a readable image: {exc}") from exc
    # Greyscale + autocontrast is cheap and helps Tesseract on phone photos.
    prepared = ImageOps.autocontrast(ImageOps.grayscale(image))
    found = pytesseract.image_to_data(prepared, config="--psm 6", output_type=pytesseract.Output.DICT)
    # One OCR pass gives both the text and the confidences: the text is rebuilt from the
    # words, a line per Tesseract line and a blank line between its paragraphs.
    lines: list[list[tuple[str, float]]] = []
    breaks: list[bool] = []
    place: tuple[int, int, int] | None = None
    for index, token in enumerate(found["text"]):
        token = str(token).strip()
        confidence = float(found["conf"][index])
        if not token or confidence < 0:
            continue
        here = (int(found["block_num"][index]), int(found["par_num"][index]), int(found["line_num"][index]))
        if here != place:
            breaks.append(place is not None and here[:2] != place[:2])
            lines.append([])
            place = here
        lines[-1].append((token, confidence))
    text_lines: list[str] = []
    words: list[Word] = []
    for index, (line, new_paragraph) in enumerate(zip(lines, breaks, strict=True)):
        if new_paragraph:
            text_lines.append("")
        text_lines.append(" ".join(token for token, _ in line))
        words += [Word(token, index, round(confidence, 1)) for token, confidence in line]
    joined = tuple(" ".join(token for token, _ in line) for line in lines)
    return DocumentText(file_name, "ocr", "\n".join(text_lines), tuple(words), joined)
