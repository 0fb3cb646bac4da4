"""JSON schemas for tool functions, from their signatures and Google-style docstrings.

The schema is what the LLM sees, so it must describe exactly how the engine will call
the function: keyword arguments only (`*args`, `**kwargs` and positional-only
parameters are refused because the LLM sends a JSON object), and `context` is left out
because the engine supplies it.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

from app.contracts.errors import ConfigError

CONTEXT_PARAM = "context"

_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    list: {"type": "array"},
    dict: {"type": "object"},
    typing.Any: {},
}

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns?|Yields?|Raises|Examples?|Notes?|Attributes)\s*:\s*$")
_PARAM_LINE = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


class ToolSchemaError(ConfigError):
    """A tool whose signature cannot be offered to an LLM; `.problems` lists every reason."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def annotation_schema(annotation: Any, where: str) -> dict[str, Any]:
    """JSON schema of one supported annotation; raise `ToolSchemaError` for anything else."""
    if annotation is inspect.Parameter.empty:
        return {"type": "string"}
    if annotation in _SIMPLE:
        return dict(_SIMPLE[annotation])
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1 and len(args) == 2:
            return annotation_schema(members[0], where)
        raise ToolSchemaError(f"{where}: unions other than Optional[X] / X | None are not supported")
    if origin is list:
        schema: dict[str, Any] = {"type": "array"}
        if args:
            schema["items"] = annotation_schema(args[0], where)
        return schema
    if origin is dict:
        if args and args[0] is not str:
            raise ToolSchemaError(f"{where}: dict keys must be str (JSON object keys)")
        schema = {"type": "object"}
        values = annotation_schema(args[1], where) if len(args) == 2 else {}
        if values:
            schema["additionalProperties"] = values
        return schema
    raise ToolSchemaError(f"{where}: type {_type_name(annotation)} is not supported")


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is not None:
        return repr(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", None) or repr(annotation)


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary text and its `Args:` descriptions."""
    if not doc:
        return "", {}
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    param_indent: int | None = None
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        header = _SECTION.match(stripped) if indent == 0 else None
        if header:
            section, current, param_indent = header.group(1).lower(), None, None
        elif section is None:
            summary.append(line)
        elif section in ("args", "arguments", "parameters") and stripped:
            match = _PARAM_LINE.match(stripped)
            if match and (param_indent is None or indent <= param_indent):
                param_indent = indent
                current = match.group(1).lstrip("*")
                params[current] = match.group(3).strip()
            elif current is not None:
                params[current] = f"{params[current]} {stripped}".strip()
    return "\n".join(summary).strip(), params


def function_parameters(func: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """The `parameters` JSON schema of a tool and whether it takes `context`."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolSchemaError(f"cannot read the signature: {exc}") from exc
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:
        raise ToolSchemaError(f"cannot resolve type hints: {exc}") from exc
    _, docs = parse_docstring(func.__doc__)
    properties: dict[str, Any] = {}
    required: list[str] = []
    takes_context = False
    refused = {
        inspect.Parameter.POSITIONAL_ONLY: "positional-only",
        inspect.Parameter.VAR_POSITIONAL: "*args",
        inspect.Parameter.VAR_KEYWORD: "**kwargs",
    }
    problems: list[str] = []  # all of them: fixing one per run of `ferry lint` is tedious
    for name, param in signature.parameters.items():
        if param.kind in refused:
            problems.append(f"parameter {name!r} is {refused[param.kind]}; tools take named parameters only")
            continue
        if name == CONTEXT_PARAM:
            takes_context = True
            continue
        try:
            schema = annotation_schema(hints.get(name, param.annotation), f"parameter {name!r}")
        except ToolSchemaError as exc:
            problems.extend(exc.problems)
            continue
        if docs.get(name):
            schema["description"] = docs[name]
        if param.default is inspect.Parameter.empty:
            required.append(name)
        properties[name] = schema
    if problems:
        raise ToolSchemaError(*problems)
    return {"type": "object", "properties": properties, "required": required}, takes_context


def openai_tool_schema(name: str, func: Callable[..., Any]) -> tuple[dict[str, Any], str, bool]:
    """The OpenAI "function" tool for `func`, its description, and whether it takes context."""
    parameters, takes_context = function_parameters(func)
    description, _ = parse_docstring(func.__doc__)
    schema = {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }
    return schema, description, takes_context
