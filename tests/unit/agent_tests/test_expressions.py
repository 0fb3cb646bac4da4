"""The assertion language: Python-like over the bindings, with no way out to Python itself."""

from __future__ import annotations

import pytest

from app.agent_tests.expressions import evaluate, uses_name

OUTPUT = {"total": 989.24, "currency": "GBP", "items": [{"amount": 5}, {"amount": 500}], "vendor": "Acme"}


@pytest.mark.parametrize(
    "expression",
    [
        'output.total > 0 and output.currency in ("EUR", "GBP")',
        'output["vendor"] == "Acme" and output.items[1].amount == 500',
        "len(output.items) == 2",  # a key named like a dict method reads the key
        "any(item.amount > 100 for item in output.items)",
        'status == "completed" and error == None',
        "round(output.total * 2, 2) == 1978.48",
    ],
)
def test_expressions_that_hold(expression: str) -> None:
    assert evaluate(expression, {"output": OUTPUT, "status": "completed", "error": None}).holds


def test_a_false_expression_is_false_without_an_error() -> None:
    verdict = evaluate("output.total < 0", {"output": OUTPUT})
    assert (verdict.holds, verdict.error) == (False, None)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("output.missing == 1", "no key or attribute 'missing'"),
        ("outptu.total > 0", "'outptu' is not defined here (names: output)"),
        ("output.__class__", "__class__"),
        ('__import__("os").system("true")', "__import__"),
        ("open('/etc/passwd')", "open"),
    ],
)
def test_what_cannot_be_evaluated_fails_with_a_reason_and_never_runs_python(expression: str, reason: str) -> None:
    verdict = evaluate(expression, {"output": OUTPUT})
    assert verdict.holds is False
    assert verdict.error is not None and reason in verdict.error


def test_uses_name_sees_a_binding_only_where_it_is_read() -> None:
    assert uses_name("result.status == 'valid'", "result")
    assert not uses_name("params.result == 1", "result")
