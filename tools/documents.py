"""Document tools of the invoice pipeline: text out of PDFs and scanned images.

Documents reach a run as `input.files` ({name, mime_type, data in base64}); the LLM is
only told the file names, so these tools take a name and find the bytes in the run's
context. This keeps megabytes of base64 out of the prompt and out of the token bill.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import pypdf
import pytesseract
from PIL import Image, ImageOps


def _file_bytes(file_name: str, context: dict[str, Any] | None) -> bytes:
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


def parse_pdf(file_name: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract the text of a PDF document attached to the request, page by page.

    Works for PDFs with a text layer; a scanned PDF returns empty pages (use OCR then).

    Args:
        file_name: Name of the attached PDF file, as listed in the request's files.
    """
    data = _file_bytes(file_name, context)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except pypdf.errors.PyPdfError as exc:
        raise ValueError(f"{file_name!r} is not a readable PDF: {exc}") from exc
    return {"file_name": file_name, "pages": len(pages), "text": "\n\n".join(pages).strip()}


def extract_text_from_image(file_name: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read the text of a scanned document or photo (PNG, JPEG, TIFF) attached to the request.

    Args:
        file_name: Name of the attached image file, as listed in the request's files.
    """
    data = _file_bytes(file_name, context)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{file_name!r} is not a readable image: {exc}") from exc
    # Greyscale + autocontrast is cheap and helps Tesseract on phone photos.
    prepared = ImageOps.autocontrast(ImageOps.grayscale(image))
    text = pytesseract.image_to_string(prepared, config="--psm 6")
    return {"file_name": file_name, "text": text.strip()}
