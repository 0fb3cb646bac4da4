"""Arithmetic checks of an extracted invoice, in Decimal so cents never drift.

An LLM reads numbers well and adds them badly; the validator agent calls this tool
instead of doing the sums itself, and reports what it finds.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_NOT_A_NUMBER = re.compile(r"[^0-9.\-]")


def _amount(value: Any) -> Decimal | None:
    """'$1,234.50', 1234.5 or '1234.50' → Decimal; 'unclear', None or junk → None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip()
        negative = text.startswith("(") and text.endswith(")")
        cleaned = _NOT_A_NUMBER.sub("", text)
        if not cleaned or cleaned in {"-", "."}:
            return None
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            return None
        return -number if negative else number
    return None


def _check(name: str, expected: Decimal, actual: Decimal, tolerance: Decimal) -> dict[str, Any]:
    difference = actual - expected
    return {
        "check": name,
        "expected": str(expected),
        "actual": str(actual),
        "difference": str(difference),
        "ok": abs(difference) <= tolerance,
    }


def verify_totals(invoice: dict[str, Any], tolerance: float = 0.01) -> dict[str, Any]:
    """Check an invoice's arithmetic: line amounts, their sum against the subtotal, and subtotal + tax against the total.

    Args:
        invoice: The extracted invoice with line_items (description, quantity, unit_price, amount), subtotal, tax and total.
        tolerance: Largest difference still accepted, in the invoice currency (default one cent).
    """
    allowed = Decimal(str(tolerance))
    checks: list[dict[str, Any]] = []
    unclear: list[str] = []
    line_total = Decimal("0")
    items = invoice.get("line_items") or []
    for index, item in enumerate(items):
        item = item if isinstance(item, dict) else {}
        amount = _amount(item.get("amount"))
        quantity, unit_price = _amount(item.get("quantity")), _amount(item.get("unit_price"))
        if quantity is not None and unit_price is not None:
            computed = quantity * unit_price
            if amount is not None:
                checks.append(_check(f"line_items[{index}].amount", computed, amount, allowed))
            amount = amount if amount is not None else computed
        if amount is None:
            unclear.append(f"line_items[{index}].amount")
            continue
        line_total += amount
    subtotal, tax, total = (_amount(invoice.get(key)) for key in ("subtotal", "tax", "total"))
    for key, value in (("subtotal", subtotal), ("tax", tax), ("total", total)):
        if value is None:
            unclear.append(key)
    if subtotal is not None and items and not any(u.startswith("line_items") for u in unclear):
        checks.append(_check("line_items sum = subtotal", line_total, subtotal, allowed))
    if subtotal is not None and tax is not None and total is not None:
        checks.append(_check("subtotal + tax = total", subtotal + tax, total, allowed))
    failed = [c["check"] for c in checks if not c["ok"]]
    if failed:
        status = "invalid"
    elif unclear or not checks:
        status = "incomplete"
    else:
        status = "valid"
    return {
        "status": status,
        "valid": status == "valid",
        "checks": checks,
        "failed_checks": failed,
        "unclear_fields": unclear,
        "line_items_total": str(line_total),
        "tolerance": str(allowed),
    }
