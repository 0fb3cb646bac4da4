"""Human approval of tool calls: an agent's `approval:` block (Connic's `ApprovalConfig`).

    approval:
      tools:
        - orders.delete_order                                   # always asks
        - orders.refund: param.amount > 50 and not context.is_admin  # asks when true
      timeout: 3600            # seconds; no decision by then counts as a rejection
      message: Refunds over 50 need a manager.
      on_rejection: fail       # or continue: the model is told the call was rejected

A condition reads the call's arguments as `param.*` and the run's context as
`context.*`, with the same safe evaluator as tool conditions (never `eval`). Connic's
`inputs` (generated tools that ask a human for text) are accepted and not run yet.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.project.conditions import evaluate_condition, parse_condition


class ApprovalTool(BaseModel):
    model_config = ConfigDict(frozen=True)

    ref: str = Field(min_length=1)
    condition: str | None = None

    @property
    def name(self) -> str:
        """The bare function name the model calls."""
        return self.ref.rsplit(".", 1)[-1]


class _ParamAsInput(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name(id="input", ctx=node.ctx), node) if node.id == "param" else node


def _as_input_condition(source: str) -> str:
    """`param.x` read as `input.x`, so the tool-condition evaluator serves approval conditions."""
    tree = ast.parse(source.strip(), mode="eval")
    return ast.unparse(_ParamAsInput().visit(tree))


class ApprovalSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tools: tuple[ApprovalTool, ...] = ()
    inputs: tuple[Any, ...] = ()
    timeout: int = Field(default=3600, ge=30, le=604800)
    message: str | None = None
    on_rejection: Literal["fail", "continue"] = "fail"

    @field_validator("tools", mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("a list of tool refs or one-key maps {ref: condition}")
        entries = []
        for entry in value:
            if isinstance(entry, str):
                entries.append({"ref": entry})
            elif isinstance(entry, dict) and len(entry) == 1:
                ref, condition = next(iter(entry.items()))
                if not isinstance(condition, str) or not condition.strip():
                    raise ValueError(f"the condition of {ref!r} must be a non-empty string")
                try:
                    parse_condition(_as_input_condition(condition))
                except SyntaxError as exc:
                    raise ValueError(f"invalid condition of {ref!r}: {exc.msg}") from exc
                entries.append({"ref": str(ref), "condition": condition})
            else:
                raise ValueError("each entry is a tool ref or a one-key map {ref: condition}")
        return entries

    def needs_approval(
        self, tool_ref: str, tool_name: str, arguments: Mapping[str, Any], context: Mapping[str, Any]
    ) -> bool:
        """Whether a call of this tool (by ref, or bare name for predefined tools) must wait."""
        for entry in self.tools:
            if entry.ref not in (tool_ref, tool_name) and entry.name != tool_name:
                continue
            if entry.condition is None:
                return True
            if evaluate_condition(_as_input_condition(entry.condition), arguments, context):
                return True
        return False
