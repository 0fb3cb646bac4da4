"""How sure is an extraction? Each invoice field scored from what the document shows.

A model says what it read; it cannot say how sure it should be. This tool checks each
value the extractor returned against the document itself and scores it in [0, 1] as a
product of factors, every factor named in the field's `evidence`:

- found:  the value is in the document text (amounts compared as numbers, so `1.234,56`,
          `1,234.56 €` and `EUR 1 234,56` are all 1234.56; dates in the usual printed
          forms); 1 when found, 0.2 when the document does not show it, 0 when the model
          marked it unclear;
- ocr:    for a scan, Tesseract's mean confidence of the words the value was found in
          (0-100, scaled to 0-1); a PDF's text layer is exact (1);
- label:  for amounts, whether the line it was found on (or the line above, where a PDF
          puts the label) is labelled as this field (subtotal, tax, total in English,
          German and French): 1 when it is, 0.9 when unlabelled, 0.5 when the document
          prints it as a different field;
- checks: the arithmetic of `validation.verify_totals`: 0.5 when a check the field takes
          part in fails and the field is among the check's least certain (the others
          are what the document confirms).

The invoice's overall confidence is the mean of its fields'; a field below
`review_threshold`, or an overall confidence below it, makes `needs_review` true with the
unsure fields named. The scores are deterministic: the same document and reading always
give the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ._document_text import DocumentText, Word, read_document
from .validation import verify_totals

DEFAULT_REVIEW_THRESHOLD = 0.8
UNCLEAR = "unclear"
NOT_FOUND = 0.2
UNLABELLED = 0.9
OTHER_LABEL = 0.5
FAILED_CHECK = 0.5
_BLAME_MARGIN = 0.05
_CENT = Decimal("0.01")
_MAX_WORDS_IN_AN_AMOUNT = 3  # "1 234,56" is two words, "EUR 1 234,56" three

# The labels of the amount fields, most specific first: "Total HT" is a subtotal and
# "Sous-total" is not a total.
_LABELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "subtotal",
        re.compile(
            r"sub[\s-]?total|zwischensumme|nettobetrag|netto|sous[\s-]?total|total\s+h\.?t\.?|montant\s+h\.?t\.?|net\s+amount",
            re.IGNORECASE,
        ),
    ),
    ("tax", re.compile(r"\b(?:tax|vat|gst|mwst|ust|umsatzsteuer|mehrwertsteuer|tva|taxe)\b", re.IGNORECASE)),
    (
        "total",
        re.compile(
            r"\b(?:total|gesamtbetrag|gesamtsumme|gesamt|rechnungsbetrag|amount\s+due|balance\s+due|montant\s+ttc|net\s+[àa]\s+payer)\b",
            re.IGNORECASE,
        ),
    ),
)
_CURRENCY_BEFORE = re.compile(r"^(?:[A-Z]{3}|[^\w\s%]{1,3})\s*")  # "EUR 12.50", "€12,50", "US$ 3"
_CURRENCY_AFTER = re.compile(r"\s*(?:[A-Z]{3}|[^\w\s%]{1,3})$")  # "12,50 €", "12.50 EUR"
_CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY"}
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d %B %Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y")


@dataclass
class FieldScore:
    confidence: float
    evidence: list[str] = field(default_factory=list)

    def times(self, factor: float, why: str) -> None:
        self.confidence *= factor
        self.evidence.append(why)

    def as_json(self) -> dict[str, Any]:
        return {"confidence": round(self.confidence, 3), "evidence": self.evidence}


def _parse_amount(text: str) -> Decimal | None:
    """A printed amount as a number, whatever its format: `1,234.56`, `1.234,56`,
    `1 234,56`, `1'234.56`, `€12,50`, `12.50 EUR`, `-3.00`, `(12.00)`; None when it is
    not one. A last `.` or `,` followed by one or two digits is the decimal mark, by
    three a thousands separator (`1.234` is 1234)."""
    stripped = text.strip()
    negative = stripped.startswith("-") or (stripped.startswith("(") and stripped.endswith(")"))
    core = _CURRENCY_AFTER.sub("", _CURRENCY_BEFORE.sub("", stripped.strip("()-")))
    if not re.fullmatch(r"\d(?:[\d.,' \u00a0\u202f]*\d)?", core):
        return None
    digits = re.sub(r"[' \u00a0\u202f]", "", core)
    mark = max(digits.rfind("."), digits.rfind(","))
    if mark >= 0 and len(digits) - mark - 1 in (1, 2):
        whole, cents = digits[:mark], digits[mark + 1 :]
    else:
        whole, cents = digits, "0"
    try:
        number = Decimal(f"{re.sub(r'[.,]', '', whole) or '0'}.{cents}")
    except InvalidOperation:
        return None
    return -number if negative else number


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    return _parse_amount(str(value)) if isinstance(value, str) else None


def _words_of(text: str) -> list[str]:
    return [w for w in (re.sub(r"^\W+|\W+$", "", token).lower() for token in text.split()) if w]


def _ocr_factor(score: FieldScore, matched: Sequence[Word]) -> None:
    confidences = [w.confidence for w in matched if w.confidence is not None]
    if not confidences:
        score.evidence.append("read from the PDF's text layer")
        return
    mean = sum(confidences) / len(confidences)
    score.times(mean / 100, f"OCR word confidence {mean:.0f}/100")


def _spans(document: DocumentText, size: int) -> Iterator[tuple[int, Sequence[Word]]]:
    """Every run of `size` consecutive words on one line, with its start index."""
    words = document.words
    for start in range(len(words) - size + 1):
        run = words[start : start + size]
        if run[0].line == run[-1].line:
            yield start, run


def _find_text(document: DocumentText, value: str) -> Sequence[Word] | None:
    if value in _CURRENCY_SYMBOLS:  # a symbol is printed against its amount: "€12,50", "12,50 €"
        printed = next((w for w in document.words if value in w.text), None)
        return None if printed is None else [printed]
    wanted = _words_of(value)
    if not wanted:
        return None
    for _, run in _spans(document, len(wanted)):
        if [w for token in run for w in _words_of(token.text)] == wanted:
            return run
    return None


def _find_amount(document: DocumentText, value: Decimal) -> list[Sequence[Word]]:
    """Every place the document prints `value` (to the cent), shortest readings first."""
    found: list[Sequence[Word]] = []
    taken: set[int] = set()
    target = value.quantize(_CENT)
    for size in range(1, _MAX_WORDS_IN_AN_AMOUNT + 1):
        for start, run in _spans(document, size):
            if taken.intersection(range(start, start + size)) or not any(ch.isdigit() for ch in run[-1].text):
                continue
            number = _parse_amount(" ".join(w.text for w in run))
            if number is not None and number.quantize(_CENT) == target:
                found.append(run)
                taken.update(range(start, start + size))
    return found


def _label_of(line: str) -> str | None:
    """The amount field a line of the document is labelled as, if any."""
    for name, pattern in _LABELS:
        if pattern.search(line):
            return name
    return None


def _line_label(document: DocumentText, line: int) -> str | None:
    lines = document.lines
    here = _label_of(lines[line]) if line < len(lines) else None
    if here is None and line > 0 and _parse_amount(lines[line - 1]) is None:
        return _label_of(lines[line - 1])  # a PDF's table puts the label on the line above
    return here


def _score_amount(document: DocumentText, name: str, value: Any) -> FieldScore:
    number = _amount(value)
    if number is None:
        return FieldScore(0.0, ["the model marked it unclear"])
    places = _find_amount(document, number)
    if not places:
        return FieldScore(NOT_FOUND, [f"{number} is not in the document text"])
    best: FieldScore | None = None
    for run in places:
        score = FieldScore(1.0, [f"found as {' '.join(w.text for w in run)!r} on line {run[0].line + 1}"])
        _ocr_factor(score, run)
        label = _line_label(document, run[0].line) if name in ("subtotal", "tax", "total") else name
        if label is None:
            score.times(UNLABELLED, "on a line with no label")
        elif label != name:
            score.times(OTHER_LABEL, f"the document labels it as the {label}")
        elif name in ("subtotal", "tax", "total"):
            score.evidence.append(f"on the line labelled {name}")
        if best is None or score.confidence > best.confidence:
            best = score
    assert best is not None
    return best


def _date_spellings(value: str) -> list[str]:
    spellings = [value]
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        spellings += [parsed.strftime(other) for other in _DATE_FORMATS]
        spellings.append(parsed.strftime("%d %B %Y").lstrip("0"))
    return list(dict.fromkeys(spellings))


def _score_text(document: DocumentText, name: str, value: Any) -> FieldScore:
    if not isinstance(value, str) or not value.strip() or value.strip().lower() == UNCLEAR:
        return FieldScore(0.0, ["the model marked it unclear"])
    spellings = _date_spellings(value) if name == "invoice_date" else [value]
    if name == "currency":
        spellings += [symbol for symbol, code in _CURRENCY_SYMBOLS.items() if code == value.strip().upper()]
    for spelling in spellings:
        run = _find_text(document, spelling)
        if run is not None:
            score = FieldScore(1.0, [f"found as {' '.join(w.text for w in run)!r} on line {run[0].line + 1}"])
            _ocr_factor(score, run)
            return score
    return FieldScore(NOT_FOUND, [f"{value!r} is not in the document text"])


def _check_factors(scores: dict[str, FieldScore], invoice: dict[str, Any]) -> None:
    """A passed check is noted; a failed one doubts its least certain fields (those within
    `_BLAME_MARGIN` of the lowest): when the document shows subtotal and tax where they
    are labelled and not the total, the total is what was misread."""
    report = verify_totals(invoice)
    items = [k for k in scores if k.startswith("line_items[")]
    takes_part = {
        "subtotal + tax = total": ["subtotal", "tax", "total"],
        "line_items sum = subtotal": ["subtotal", *items],
    }
    for check in report["checks"]:
        names = [n for n in takes_part.get(check["check"], [check["check"]]) if n in scores]
        if check["ok"]:
            for name in names:
                scores[name].evidence.append(f"passes the check {check['check']}")
            continue
        readable = [n for n in names if scores[n].confidence > 0]
        lowest = min((scores[n].confidence for n in readable), default=0.0)
        for name in readable:
            if scores[name].confidence <= lowest + _BLAME_MARGIN:
                scores[name].times(FAILED_CHECK, f"fails the check {check['check']} (off by {check['difference']})")
            else:
                scores[name].evidence.append(f"in the failed check {check['check']}, less doubtful than the others")


def score_invoice(
    invoice: dict[str, Any],
    file_name: str,
    review_threshold: float = DEFAULT_REVIEW_THRESHOLD,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score how sure each field of an extracted invoice is, from the document it was read from. Returns the invoice unchanged plus a `confidence` object: per field a confidence in [0, 1] with its evidence, the overall confidence, and needs_review with the unsure fields.

    Args:
        invoice: The invoice exactly as extracted (vendor, invoice_number, invoice_date, currency, line_items, subtotal, tax, total).
        file_name: Name of the attached document the invoice was read from.
        review_threshold: A field (or the overall confidence) below this needs a human review; between 0 and 1.
    """
    if not 0 <= review_threshold <= 1:
        raise ValueError(f"review_threshold must be between 0 and 1 (got {review_threshold})")
    invoice = {k: v for k, v in invoice.items() if k != "confidence"}  # a second call scores afresh
    document = read_document(file_name, context)
    scores: dict[str, FieldScore] = {}
    for name in ("vendor", "invoice_number", "invoice_date"):
        scores[name] = _score_text(document, name, invoice.get(name))
    if invoice.get("currency") not in (None, ""):
        scores["currency"] = _score_text(document, "currency", invoice.get("currency"))
    for index, item in enumerate(invoice.get("line_items") or []):
        amount = item.get("amount") if isinstance(item, dict) else None
        scores[f"line_items[{index}].amount"] = _score_amount(document, "line_item", amount)
    for name in ("subtotal", "tax", "total"):
        scores[name] = _score_amount(document, name, invoice.get(name))
    _check_factors(scores, invoice)
    overall = sum(s.confidence for s in scores.values()) / len(scores)
    unsure = [name for name, s in scores.items() if round(s.confidence, 3) < review_threshold]
    return {
        **invoice,
        "confidence": {
            "overall": round(overall, 3),
            "review_threshold": review_threshold,
            "needs_review": bool(unsure) or round(overall, 3) < review_threshold,
            "unsure_fields": unsure,
            "source": {
                "file_name": file_name,
                "read_by": document.source,
                "ocr_mean_confidence": document.mean_confidence,
            },
            "fields": {name: s.as_json() for name, s in scores.items()},
        },
    }
