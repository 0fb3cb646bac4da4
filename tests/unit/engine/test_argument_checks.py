"""A tool's argument validator is built once and reused; a tool of the same name with
another schema (a reloaded project's) is held to its own schema, not the cached one."""

from __future__ import annotations

from typing import Any

import pytest

from app.contracts.errors import ToolError
from app.engine.tools import ArgumentChecks, parse_arguments
from app.project.tooldef import ToolDef


def lookup_tool(parameters: dict[str, Any]) -> ToolDef:
    schema = {"type": "function", "function": {"name": "lookup", "description": "", "parameters": parameters}}
    return ToolDef(name="lookup", ref="shop.lookup", func=lambda **_: None, schema=schema)


def test_a_tools_validator_is_reused_and_each_schema_keeps_its_own() -> None:
    checks = ArgumentChecks()
    takes_text = lookup_tool({"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]})
    takes_number = lookup_tool({"type": "object", "properties": {"item": {"type": "integer"}}, "required": ["item"]})
    assert takes_text == takes_number  # equal as ToolDefs: only the schema differs
    assert checks.validator(takes_text) is checks.validator(takes_text)
    assert parse_arguments(takes_text, '{"item": "a"}', checks) == {"item": "a"}
    assert parse_arguments(takes_number, '{"item": 3}', checks) == {"item": 3}
    with pytest.raises(ToolError, match="invalid arguments for 'lookup' at item"):
        parse_arguments(takes_number, '{"item": "a"}', checks)
    with pytest.raises(ToolError, match="invalid arguments for 'lookup' at \\(root\\)"):
        parse_arguments(takes_text, "{}", checks)
