"""validation.verify_totals: Decimal arithmetic over an extracted invoice."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import SAMPLES


@pytest.fixture
def verify(tool: Callable[[str], Any]) -> Callable[..., dict[str, Any]]:
    return tool("validation.verify_totals")


@pytest.mark.parametrize("truth_file", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_sample_invoice_is_valid(verify: Callable[..., dict[str, Any]], truth_file: Any) -> None:
    report = verify(json.loads(truth_file.read_text())["expected"])
    assert report["status"] == "valid" and report["valid"] is True
    assert report["failed_checks"] == [] and report["unclear_fields"] == []


def test_float_noise_does_not_fail_a_correct_invoice(verify: Callable[..., dict[str, Any]]) -> None:
    # 0.1 + 0.2 != 0.3 in floats; in Decimal built from the printed values it is exact.
    invoice = {
        "line_items": [{"description": "a", "amount": 0.1}, {"description": "b", "amount": 0.2}],
        "subtotal": 0.3,
        "tax": 0.0,
        "total": 0.3,
    }
    report = verify(invoice, tolerance=0)
    assert report["valid"], report


def test_a_wrong_total_is_reported_with_the_difference(verify: Callable[..., dict[str, Any]]) -> None:
    invoice = {
        "line_items": [{"description": "a", "quantity": 2, "unit_price": "$10.00", "amount": "20.00"}],
        "subtotal": "20.00",
        "tax": "4.00",
        "total": "25.00",
    }
    report = verify(invoice)
    assert report["status"] == "invalid"
    assert report["failed_checks"] == ["subtotal + tax = total"]
    failed = next(c for c in report["checks"] if not c["ok"])
    assert (failed["expected"], failed["actual"], failed["difference"]) == ("24.00", "25.00", "1.00")


def test_line_items_must_add_up_to_the_subtotal(verify: Callable[..., dict[str, Any]]) -> None:
    invoice = {
        "line_items": [{"description": "a", "amount": "1,000.00"}, {"description": "b", "amount": 50}],
        "subtotal": 1000,
        "tax": 0,
        "total": 1000,
    }
    assert verify(invoice)["failed_checks"] == ["line_items sum = subtotal"]


def test_a_line_whose_quantity_times_price_differs_is_flagged(verify: Callable[..., dict[str, Any]]) -> None:
    invoice = {
        "line_items": [{"description": "a", "quantity": 3, "unit_price": 10, "amount": 31}],
        "subtotal": 31,
        "tax": 0,
        "total": 31,
    }
    assert verify(invoice)["failed_checks"] == ["line_items[0].amount"]


def test_within_tolerance_is_accepted(verify: Callable[..., dict[str, Any]]) -> None:
    invoice = {"line_items": [{"description": "a", "amount": 10}], "subtotal": 10, "tax": 1.9, "total": 11.91}
    assert verify(invoice)["valid"] and not verify(invoice, tolerance=0.001)["valid"]


def test_unclear_fields_make_the_report_incomplete_not_invalid(verify: Callable[..., dict[str, Any]]) -> None:
    invoice = {"line_items": [{"description": "a", "amount": "unclear"}], "subtotal": 10, "tax": "unclear", "total": 12}
    report = verify(invoice)
    assert report["status"] == "incomplete" and not report["valid"]
    assert report["unclear_fields"] == ["line_items[0].amount", "tax"]
