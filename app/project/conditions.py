"""Conditions of conditional tools, e.g. `{crm.refund: "input.amount < 100 and context.tier == 'gold'"}`.

A condition comes from a YAML file that anyone with repo access may edit, and it is
evaluated inside the worker for every run, so it must never reach `eval`. It is parsed
with `ast` and interpreted by a whitelist: names `input` and `context` (plus
`true/false/null` and Python's constants), attribute and constant-subscript access,
literals, comparisons, `and`/`or`/`not` and unary minus. No calls, no arithmetic, no
dunder attributes. A missing key reads as null, and a comparison between values that
cannot be ordered is false, so a condition never crashes a run: at worst it hides a tool.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from app.contracts.errors import ConfigError

ROOT_NAMES: frozenset[str] = frozenset({"input", "context"})
_LITERAL_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_MISSING = None


class ConditionError(ConfigError):
    """A condition that is not valid syntax or uses something outside the whitelist."""


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.Expression):
        _check(node.body)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub)):
            raise ConditionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise ConditionError(f"comparison {type(op).__name__} is not allowed")
        for sub in (node.left, *node.comparators):
            _check(sub)
    elif isinstance(node, ast.Name):
        if node.id not in ROOT_NAMES and node.id.lower() not in _LITERAL_NAMES:
            raise ConditionError(f"unknown name {node.id!r}: use input.<key> or context.<key>")
    elif isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise ConditionError(f"attribute {node.attr!r} is not allowed")
        _check(node.value)
    elif isinstance(node, ast.Subscript):
        if not isinstance(node.slice, ast.Constant) or not isinstance(node.slice.value, (str, int)):
            raise ConditionError("a subscript must be a string or integer constant")
        _check(node.value)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise ConditionError(f"constant {node.value!r} is not allowed")
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for elt in node.elts:
            _check(elt)
    else:
        raise ConditionError(f"{type(node).__name__} is not allowed in a condition")


def _roots(node: ast.AST) -> bool:
    """Whether the expression reads `input` or `context` at all (a constant condition is a mistake)."""
    return any(isinstance(n, ast.Name) and n.id in ROOT_NAMES for n in ast.walk(node))


def parse_condition(source: str) -> ast.Expression:
    """Parse and whitelist-check a condition; raise `ConditionError` with a readable reason."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"invalid condition syntax: {exc.msg}") from exc
    _check(tree)
    if not _roots(tree):
        raise ConditionError("a condition must read input.* or context.*")
    return tree


def _lookup(value: Any, key: str | int) -> Any:
    if isinstance(value, Mapping):
        return value.get(key, _MISSING)
    if isinstance(value, (list, tuple)) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else _MISSING
    return _MISSING


def _eval(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, scope)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, scope) for v in node.values)
        return any(_eval(v, scope) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(operand, (int, float)) and not isinstance(operand, bool) else None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, scope)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        if node.id in ROOT_NAMES:
            return scope[node.id]
        return _LITERAL_NAMES[node.id.lower()]
    if isinstance(node, ast.Attribute):
        return _lookup(_eval(node.value, scope), node.attr)
    if isinstance(node, ast.Subscript):
        assert isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, (str, int))  # by _check
        return _lookup(_eval(node.value, scope), node.slice.value)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_eval(elt, scope) for elt in node.elts]
    raise ConditionError(f"{type(node).__name__} is not allowed in a condition")


def evaluate_condition(condition: str | ast.Expression, input: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Evaluate a (pre-checked or source) condition against one run's input and context."""
    tree = parse_condition(condition) if isinstance(condition, str) else condition
    try:
        return bool(_eval(tree, {"input": input, "context": context}))
    except (TypeError, ValueError, KeyError, IndexError):
        return False
