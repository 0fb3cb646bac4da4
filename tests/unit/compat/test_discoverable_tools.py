"""discoverable_tools: hidden until search_tools finds them, then callable; used for lint."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import yaml

from app.contracts import RunRequest, RunStatus
from app.engine import Engine
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.project import lint_project, load_project

OPS = '''
def refund_order(order_id: str) -> str:
    """Refund an order to the customer's card."""
    return f"refunded {order_id}"


def export_report(month: str) -> str:
    """Export the monthly sales report as CSV."""
    return "a,b"


def lookup(order_id: str) -> str:
    """Look an order up."""
    return "open"
'''


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    (root / "tools").mkdir()
    (root / "tools" / "ops.py").write_text(textwrap.dedent(OPS))
    agent = {"version": "1.0", "name": "desk", "description": "helps", "model": "openai/sim",
             "system_prompt": "Help.", "tools": ["ops.lookup"],
             "discoverable_tools": ["ops.refund_order", "ops.export_report"]}  # fmt: skip
    (root / "agents" / "desk.yaml").write_text(yaml.safe_dump(agent))
    return root


def offered(request: object) -> list[str]:
    return sorted(t["function"]["name"] for t in getattr(request, "tools", None) or [])


async def test_a_tool_is_offered_once_search_tools_found_it(tmp_path: Path) -> None:
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[tool_call("export_report", {"month": "2026-11"})]),  # not found yet: refused
            Reply(tool_calls=[tool_call("search_tools", {"query": "refund the order"})]),
            Reply(tool_calls=[tool_call("refund_order", {"order_id": "ORD-1"})]),
            "Refunded.",
        ]
    )
    engine = Engine(load_project(project(tmp_path)), llm=llm)
    try:
        result = await engine.run(RunRequest.new("desk", "refund ORD-1"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED
    assert offered(llm.requests[0]) == ["lookup", "search_tools"]
    assert offered(llm.requests[3]) == ["lookup", "refund_order", "search_tools"]
    answers = [json.loads(m["content"]) if m["content"].startswith("{") else m["content"]
               for m in llm.requests[3].messages if m["role"] == "tool"]  # fmt: skip
    assert "unknown tool 'export_report'" in answers[0]["error"]
    assert answers[1]["tools"][0]["name"] == "refund_order"
    assert answers[2] == "refunded ORD-1"


def test_discoverable_tools_count_as_referenced_for_lint(tmp_path: Path) -> None:
    assert [str(p) for p in lint_project(project(tmp_path)).problems] == []
