"""The assertion language of test suites: a Python-like expression, never `eval`.

`expected_result: output.total > 0 and output.currency in ("EUR", "USD")` is evaluated by
`simpleeval` (the evaluator connic-composer-sdk depends on), with only the bindings the
format defines: `output`, `error`, `status`, `input`, `context` for a result;
`params`, `result`, `invocations`, `context` for a tool call. Attribute access reads a
key (`output.total` is `output["total"]`), subscripts, comparisons, `and/or/not`,
`in`, arithmetic, literals and a few functions (`len`, `abs`, `min`, `max`, `round`,
`int`, `float`, `str`, `bool`, `any`, `all`, `sorted`) are there; imports, dunder
attributes and any other call are not.

A key of the output wins over a method of the same name: `output.items` is the output's
`items`, not `dict.items`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import simpleeval

_FUNCTIONS: dict[str, Any] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "any": any,
    "all": all,
    "sorted": sorted,
}


class _Record(dict[str, Any]):
    """A JSON object whose keys read as attributes first (`output.items` is the key)."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        return super().__getattribute__(name)


def bindable(value: Any) -> Any:
    """A value as expressions see it: JSON objects as `_Record`s, all the way down."""
    if isinstance(value, Mapping):
        return _Record({str(key): bindable(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return [bindable(item) for item in value]
    return value


def parsed_json(value: Any) -> Any:
    """A string that is a JSON object or array, parsed (the format converts payloads and
    outputs that parse as JSON before binding them); anything else as it is."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


@dataclass(frozen=True)
class Evaluation:
    """An expression's verdict: `holds`, or the reason it could not be evaluated."""

    holds: bool
    error: str | None = None


def evaluate(expression: str, names: Mapping[str, Any]) -> Evaluation:
    evaluator = simpleeval.EvalWithCompoundTypes(
        names={key: bindable(value) for key, value in names.items()}, functions=_FUNCTIONS
    )
    try:
        return Evaluation(bool(evaluator.eval(expression.strip())))
    except simpleeval.NameNotDefined as exc:
        return Evaluation(False, f"{exc.name!r} is not defined here (names: {', '.join(sorted(names))})")
    except simpleeval.AttributeDoesNotExist as exc:
        return Evaluation(False, f"no key or attribute {exc.attr!r}")
    except simpleeval.InvalidExpression as exc:
        return Evaluation(False, str(exc))
    except KeyError as exc:
        return Evaluation(False, f"no key {exc.args[0]!r}")
    except IndexError:
        return Evaluation(False, "index out of range")
    except (TypeError, ValueError, ZeroDivisionError, AttributeError, SyntaxError) as exc:
        return Evaluation(False, f"{type(exc).__name__}: {exc}")


def uses_name(expression: str, name: str) -> bool:
    """Whether the expression reads `name` (a call without a result never matches one that reads `result`)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(tree))
