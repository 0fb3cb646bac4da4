"""Tool problems all at once, where the fix is made, with the nearest name for a misspelt ref."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.project import ProjectError, lint_project, load_project

from .conftest import HEADER, write_project

MULTI = '''\
"""Tools with more than one thing wrong."""


def fine(x: int) -> int:
    return x


def bad(*args, v: int | str, w: tuple[int, int], **options):
    return args


def no_payload(data: dict):
    return data
'''


def _errors(root: Path) -> list[str]:
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    return [str(p) for p in caught.value.errors]


def test_every_signature_problem_is_reported_at_the_ref_and_at_the_def(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        {
            "agents/a.yaml": HEADER + "tools: [multi.fine, multi.bad]\n",
            "agents/b.yaml": HEADER.replace("name: a", "name: b") + "tools:\n  - multi.bad\n",
            "tools/multi.py": MULTI,
        },
    )
    reasons = [
        "tool 'multi.bad': parameter 'args' is *args; tools take named parameters only",
        "tool 'multi.bad': parameter 'v': unions other than Optional[X] / X | None are not supported",
        "tool 'multi.bad': parameter 'w': type tuple[int, int] is not supported",
        "tool 'multi.bad': parameter 'options' is **kwargs; tools take named parameters only",
    ]
    places = ["agents/a.yaml:6:21 tools[1]", "agents/b.yaml:7:5 tools[0]", "tools/multi.py:8:1"]
    # the def line once, however many refs use the tool; problems at one place sort by message
    assert _errors(root) == [f"{place}: {reason}" for place in places for reason in sorted(reasons)]


def test_a_tool_agent_function_without_payload_is_reported_at_its_def_too(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        {
            "agents/t.yaml": 'version: "1.0"\nname: t\ndescription: x\ntype: tool\ntool_name: multi.no_payload\n',
            "tools/multi.py": MULTI,
        },
    )
    reason = "'multi.no_payload' must take a 'payload' parameter (and optionally 'context')"
    assert _errors(root) == [f"agents/t.yaml:5:12 tool_name: {reason}", f"tools/multi.py:12:1: {reason}"]


def test_a_decorated_tool_is_reported_at_the_function_it_wraps(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        {
            "agents/a.yaml": HEADER + "tools: [deco.wrapped]\n",
            "tools/deco.py": "import functools\n\n\ndef logged(func):\n    @functools.wraps(func)\n"
            "    def inner(**kwargs):\n        return func(**kwargs)\n\n    return inner\n\n\n"
            "@logged\ndef wrapped(*values):\n    return values\n",
        },
    )
    reason = "tool 'deco.wrapped': parameter 'values' is *args; tools take named parameters only"
    assert f"tools/deco.py:12:1: {reason}" in _errors(root)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("documents.parse_pfd", "no function 'parse_pfd' in tools/documents.py — did you mean `documents.parse_pdf`?"),
        ("documnets.parse_pdf", "no tool module tools/documnets.py — did you mean `documents.parse_pdf`?"),
        ("billing.invoice.total", "no tool module tools/billing/invoice.py — did you mean `billing.invoices.total`?"),
        ("documnets.parse_*", "no tool module tools/documnets.py — did you mean `documents.parse_*`?"),
        ("documents.summarise", "no function 'summarise' in tools/documents.py"),  # nothing close: no guess
        ("weather.today", "no tool module tools/weather.py"),
    ],
)
def test_a_misspelt_tool_ref_names_the_nearest_tool(tmp_path: Path, ref: str, expected: str) -> None:
    root = write_project(
        tmp_path / "p",
        {
            "agents/a.yaml": HEADER + f"tools:\n  - {ref}\n",
            "tools/documents.py": "def parse_pdf(name: str):\n    return name\n\n\ndef ocr(name: str):\n    return name\n",
            "tools/billing/invoices.py": "def total(amount: float):\n    return amount\n",
            "tools/_private.py": "def helper():\n    return 1\n",
        },
    )
    assert [str(p) for p in lint_project(root).errors] == [f"agents/a.yaml:7:5 tools[0]: {expected}"]
