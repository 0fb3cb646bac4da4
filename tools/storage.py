"""The invoice-storer tool agent: one flat, typed record per invoice for the results sink.

The tool does no I/O. Storage is the job of the sink behind `runs.results` (the JDBC
connector upserts on `record_key`), so a retried run can never write twice and the
tool needs no credentials.

`needs_review` is decided here, by code after the last model: an invoice needs a human
when its arithmetic is not `valid` or when `scoring.score_invoice` found a field (or the
whole) below the review threshold; an invoice that was never scored needs review too.
The connectors route by it (connectors/README.md).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%B %d, %Y", "%d %B %Y", "%b %d, %Y", "%d %b %Y")
_CENT = Decimal("0.01")


def _money(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = re.sub(r"[^0-9.\-]", "", str(value))
    try:
        return str(Decimal(text).quantize(_CENT)) if text else None
    except InvalidOperation:
        return None


def _quantity(value: Any) -> str | None:
    money = _money(value)
    return None if money is None else str(Decimal(money).normalize())


def _iso_date(value: Any) -> str | None:
    if isinstance(value, (date, datetime)):
        return value.strftime("%Y-%m-%d")
    if not isinstance(value, str):
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).strftime("%Y-%m-%d")
        except ValueError:
            continue
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return None if not text or text.lower() == "unclear" else text


def _review(invoice: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """The record's review columns from the scorer's `confidence` and the validator's report."""
    scored = invoice.get("confidence") if isinstance(invoice.get("confidence"), dict) else None
    status = validation.get("status", "unchecked")
    reasons = [] if status == "valid" else [f"validation {status}"]
    if scored is None:
        reasons.append("not scored")
        return {"confidence": None, "field_confidences": {}, "unsure_fields": [], "review_reasons": reasons}
    fields = scored.get("fields") if isinstance(scored.get("fields"), dict) else {}
    unsure = [str(name) for name in scored.get("unsure_fields") or []]
    if unsure:
        reasons.append("unsure: " + ", ".join(unsure))
    elif scored.get("needs_review"):
        reasons.append("low overall confidence")
    return {
        "confidence": scored.get("overall"),
        "field_confidences": {
            str(name): field.get("confidence") for name, field in fields.items() if isinstance(field, dict)
        },
        "unsure_fields": unsure,
        "review_reasons": reasons,
    }


def to_invoice_record(payload: dict[str, Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn the validator's output ({invoice, validation}) into the row the results sink stores."""
    invoice = payload.get("invoice") if isinstance(payload.get("invoice"), dict) else payload
    validation = payload.get("validation") if isinstance(payload.get("validation"), dict) else {}
    vendor = _text(invoice.get("vendor"))
    number = _text(invoice.get("invoice_number"))
    items = [
        {
            "description": _text(item.get("description")),
            "quantity": _quantity(item.get("quantity")),
            "unit_price": _money(item.get("unit_price")),
            "amount": _money(item.get("amount")),
        }
        for item in invoice.get("line_items") or []
        if isinstance(item, dict)
    ]
    identity = f"{(vendor or '').lower()}\x00{(number or '').lower()}"
    review = _review(invoice, validation)
    return {
        "record_type": "invoice",
        "record_key": hashlib.sha256(identity.encode()).hexdigest()[:32],
        "vendor": vendor,
        "invoice_number": number,
        "invoice_date": _iso_date(invoice.get("invoice_date")),
        "currency": _text(invoice.get("currency")),
        "subtotal": _money(invoice.get("subtotal")),
        "tax": _money(invoice.get("tax")),
        "total": _money(invoice.get("total")),
        "line_items": items,
        "line_item_count": len(items),
        "validation_status": validation.get("status", "unchecked"),
        "needs_review": bool(review["review_reasons"]),
        **review,
        "run_id": (context or {}).get("run_id"),
    }
