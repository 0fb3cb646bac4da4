"""Conditional tools: a safe expression language over input.* and context.*."""

from __future__ import annotations

import pytest

from app.project import ConditionError, evaluate_condition, load_project, parse_condition, select_tools

from .conftest import HEADER, ProjectFactory


@pytest.mark.parametrize(
    ("condition", "input", "context", "expected"),
    [
        ("input.amount < 100", {"amount": 50}, {}, True),
        ("input.amount < 100", {"amount": 500}, {}, False),
        ("input.amount < 100", {}, {}, False),  # missing reads as null; null < 100 is false, not a crash
        ("context.tier == 'gold' and not input.test", {}, {"tier": "gold"}, True),
        ("context.tier == 'gold' or input.vip == true", {"vip": True}, {"tier": "free"}, True),
        ("context.token != null", {}, {"token": "t"}, True),
        ("context.token != null", {}, {}, False),
        ("input.customer.country in ['DE', 'AT']", {"customer": {"country": "AT"}}, {}, True),
        (
            "input['files'][0]['mime_type'] == 'application/pdf'",
            {"files": [{"mime_type": "application/pdf"}]},
            {},
            True,
        ),
        ("input.files[3].name == 'x'", {"files": []}, {}, False),
        ("-input.delta > 0", {"delta": -2}, {}, True),
        ("1 < input.n <= 3", {"n": 3}, {}, True),
        ("input.tags is None", {}, {}, True),
    ],
)
def test_conditions_evaluate_against_input_and_context(
    condition: str, input: dict, context: dict, expected: bool
) -> None:
    assert evaluate_condition(condition, input, context) is expected


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("__import__('os').system('true')", "Call is not allowed"),
        ("input.__class__", "attribute '__class__' is not allowed"),
        ("input.a + 1 > 2", "BinOp is not allowed"),
        ("[x for x in input.items]", "ListComp is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("input.a if input.b else input.c", "IfExp is not allowed"),
        ("open", "unknown name 'open'"),
        ("input[input.key]", "a subscript must be a string or integer constant"),
        ("(a := input)", "NamedExpr is not allowed"),
        ("1 == 1", "a condition must read input.* or context.*"),
        ("input.a ==", "invalid condition syntax"),
    ],
)
def test_anything_beyond_the_whitelist_is_refused(condition: str, reason: str) -> None:
    with pytest.raises(ConditionError, match=reason.replace("(", r"\(").replace("[", r"\[").replace("*", r"\*")):
        parse_condition(condition)


def test_select_tools_applies_each_tools_condition(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "agents/a.yaml": HEADER
            + "tools:\n  - good.f\n  - good.g: input.amount > 100\n  - crm.refund_*: context.tier == 'gold'\n",
            "tools/crm.py": "def refund_full(order: str):\n    return order\n\n\ndef refund_part(order: str, amount: float):\n"
            "    return order\n\n\ndef lookup(order: str):\n    return order\n",
        }
    )
    agent = load_project(root).agents["a"]
    assert [t.name for t in select_tools(agent, {"amount": 5}, {})] == ["f"]
    assert [t.name for t in select_tools(agent, {"amount": 500}, {})] == ["f", "g"]
    assert [t.name for t in select_tools(agent, {}, {"tier": "gold"})] == ["f", "refund_full", "refund_part"]
    assert [t.condition for t in agent.resolved_tools] == [None, "input.amount > 100", *["context.tier == 'gold'"] * 2]
