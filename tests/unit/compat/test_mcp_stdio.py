"""An MCP server started over stdio (Ferry's `command` / `args`), its tools offered to the model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from app.contracts import RunRequest, RunStatus
from app.engine import Engine
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.project import lint_project, load_project

INVENTORY = Path(__file__).parents[2] / "fixtures" / "mcp_servers" / "inventory.py"


def project_with(tmp_path: Path, server: dict[str, object]) -> Path:
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    agent = {
        "version": "1.0",
        "name": "stock",
        "description": "answers stock questions",
        "model": "openai/sim",
        "system_prompt": "Use the tools.",
        "mcp_servers": [server],
    }
    (root / "agents" / "stock.yaml").write_text(yaml.safe_dump(agent))
    return root


async def test_a_stdio_server_is_started_for_the_run_and_its_tools_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_PYTHON", sys.executable)
    root = project_with(tmp_path, {"name": "inventory", "command": "${MCP_PYTHON}", "args": [str(INVENTORY)]})
    llm = ScriptedLLM([Reply(tool_calls=[tool_call("reorder", {"sku": "sku-2", "units": 5})]), "done"])
    engine = Engine(load_project(root), llm=llm)
    try:
        result = await engine.run(RunRequest.new("stock", "reorder sku-2"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED, result.error
    assert sorted(t["function"]["name"] for t in llm.requests[0].tools or []) == ["reorder", "stock_level"]
    (answer,) = [m["content"] for m in llm.requests[1].messages if m["role"] == "tool"]
    assert json.loads(answer) == {"result": "ordered 5 x sku-2"}  # the server's structured content


def test_a_server_needs_exactly_one_transport(tmp_path: Path) -> None:
    root = project_with(tmp_path, {"name": "both", "url": "http://127.0.0.1:1/mcp", "command": "x"})
    assert [str(p) for p in lint_project(root).problems] == [
        "agents/stock.yaml:3:3 mcp_servers[0]: give exactly one of url (streamable HTTP) and command (a server "
        "over stdio)"
    ]


def test_server_names_are_unique_and_conditions_parse(tmp_path: Path) -> None:
    root = project_with(tmp_path, {"name": "a", "url": "http://127.0.0.1:1/mcp", "condition": "input.x ==="})
    agent = root / "agents" / "stock.yaml"
    data = yaml.safe_load(agent.read_text())
    data["mcp_servers"].append({"name": "a", "url": "http://127.0.0.1:2/mcp"})
    agent.write_text(yaml.safe_dump(data))
    problems = [str(p) for p in lint_project(root).problems]
    assert len(problems) == 2
    assert problems[0].startswith("agents/stock.yaml:3:3 mcp_servers[0]: condition of MCP server 'a':")
    assert problems[1] == "agents/stock.yaml:6:3 mcp_servers[1]: MCP server name 'a' is used twice"


async def test_a_discoverable_servers_tools_are_found_through_search_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_PYTHON", sys.executable)
    server = {"name": "inventory", "command": "${MCP_PYTHON}", "args": [str(INVENTORY)], "discoverable": True}
    root = project_with(tmp_path, server)
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[tool_call("search_tools", {"query": "units of a sku in the warehouse"})]),
            Reply(tool_calls=[tool_call("stock_level", {"sku": "sku-1"})]),
            "12",
        ]
    )
    engine = Engine(load_project(root), llm=llm)
    try:
        result = await engine.run(RunRequest.new("stock", "how many sku-1?"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED, result.error
    assert [t["function"]["name"] for t in llm.requests[0].tools or []] == ["search_tools"]
    assert "stock_level" in [t["function"]["name"] for t in llm.requests[2].tools or []]
    answer = [json.loads(m["content"]) for m in llm.requests[2].messages if m["role"] == "tool"][-1]
    assert answer == {"sku": "sku-1", "units": 12}
