"""The invoice-storer tool agent: a normalised record for the results sink, no I/O."""

from __future__ import annotations

from typing import Any

from app.project import Project


def _store(project: Project, payload: dict[str, Any], run_id: str = "run-9") -> dict[str, Any]:
    (tool,) = project.tools_for("invoice-storer")
    return tool.func(payload=payload, context={"run_id": run_id})


VALIDATED = {
    "invoice": {
        "vendor": "  Kestrel Print  Works ",
        "invoice_number": "KPW-1193",
        "invoice_date": "12/07/2024",
        "currency": "GBP",
        "line_items": [{"description": "Design hours", "quantity": "3", "unit_price": "£55", "amount": "165.0"}],
        "subtotal": 165,
        "tax": "33.00",
        "total": "unclear",
    },
    "validation": {"status": "incomplete", "valid": False, "checks": []},
}


def test_record_is_normalised_for_the_sink(example_project: Project) -> None:
    record = _store(example_project, VALIDATED)
    assert record["vendor"] == "Kestrel Print Works"
    assert record["invoice_date"] == "2024-07-12"
    assert (record["subtotal"], record["tax"], record["total"]) == ("165.00", "33.00", None)
    assert record["line_items"] == [
        {"description": "Design hours", "quantity": "3", "unit_price": "55.00", "amount": "165.00"}
    ]
    assert (record["validation_status"], record["needs_review"], record["run_id"]) == ("incomplete", True, "run-9")


def test_the_record_key_is_stable_across_runs_for_upserts(example_project: Project) -> None:
    first, again = _store(example_project, VALIDATED, "run-1"), _store(example_project, VALIDATED, "run-2")
    assert first["record_key"] == again["record_key"] and len(first["record_key"]) == 32
    other = {**VALIDATED, "invoice": {**VALIDATED["invoice"], "invoice_number": "KPW-1194"}}
    assert _store(example_project, other)["record_key"] != first["record_key"]


def test_the_storer_is_a_tool_agent_in_the_pipeline(example_project: Project) -> None:
    storer = example_project.agents["invoice-storer"]
    assert storer.type == "tool"
    assert example_project.agents["invoice-pipeline"].agents[-1] == "invoice-storer"  # type: ignore[union-attr]


def _scored(unsure: list[str], overall: float = 0.95) -> dict[str, Any]:
    fields = {"vendor": {"confidence": 0.96, "evidence": []}, "total": {"confidence": 0.4, "evidence": []}}
    confidence = {"overall": overall, "review_threshold": 0.8, "needs_review": bool(unsure) or overall < 0.8}
    return {
        "invoice": {
            **VALIDATED["invoice"],
            "total": "198.00",
            "confidence": {**confidence, "unsure_fields": unsure, "fields": fields},
        },
        "validation": {"status": "valid", "valid": True, "checks": []},
    }


def test_a_sure_valid_invoice_needs_no_review_and_carries_its_confidences(example_project: Project) -> None:
    record = _store(example_project, _scored([]))
    assert record["needs_review"] is False and record["review_reasons"] == []
    assert record["confidence"] == 0.95
    assert record["field_confidences"] == {"vendor": 0.96, "total": 0.4}
    assert record["unsure_fields"] == []


def test_an_unsure_field_sends_a_valid_invoice_to_review_named(example_project: Project) -> None:
    record = _store(example_project, _scored(["total"]))
    assert record["needs_review"] is True
    assert record["unsure_fields"] == ["total"] and record["review_reasons"] == ["unsure: total"]
    low = _store(example_project, _scored([], overall=0.7))
    assert low["needs_review"] is True and low["review_reasons"] == ["low overall confidence"]


def test_an_invoice_never_scored_needs_review(example_project: Project) -> None:
    unscored = {"invoice": {**VALIDATED["invoice"]}, "validation": {"status": "valid"}}
    record = _store(example_project, unscored)
    assert record["needs_review"] is True and record["review_reasons"] == ["not scored"]
    assert record["confidence"] is None
    record = _store(example_project, VALIDATED)
    assert record["review_reasons"] == ["validation incomplete", "not scored"]
