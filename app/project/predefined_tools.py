"""Connic's predefined tools as `ToolDef`s: listable by bare name in `tools:` (`db_find`,
`trigger_agent`, `query_knowledge`, `db_*`), resolved with the SDK's own name tables.

The function of each is the dispatcher installed into `connic.tools` (app/compat/runtime.py),
so a tool listed in YAML and one a user module imports are the same function. The schema
the LLM sees comes from the SDK's signature and docstring; an alias is described by the
function it stands for (the SDK's aliases carry no docstring). Browser tools are refused
with the reason: Ferry has no browser to drive.
"""

from __future__ import annotations

import fnmatch
import inspect
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from app.compat.runtime import canonical, model_facing, placeholder_of, predefined_names
from app.project.tool_schema import parse_docstring
from app.project.tooldef import ToolDef


def unsupported(name: str) -> str | None:
    """Why Ferry refuses predefined tool `name` at load (what the user would miss), or None."""
    if name.startswith("web_browser_") and name in predefined_names():
        return f"browser tools (web_browser_*) need a hosted browser Ferry does not run — {name} will not be offered to the LLM"
    return None


def is_predefined(ref: str) -> bool:
    """A bare name (or a bare-name wildcard) that means Connic's predefined tools (the
    SDK's name tables are read for bare names only: `module.function` refs need no SDK)."""
    if "." in ref:
        return False
    if "*" in ref or "?" in ref or "[" in ref:
        return any(fnmatch.fnmatchcase(name, ref) for name in predefined_names())
    return ref in predefined_names()


def expand(ref: str) -> list[str]:
    """The predefined names a ref stands for; a wildcard, like the SDK's, matches no alias."""
    names = predefined_names()
    if ref in names:
        return [ref]
    return sorted(name for name in names if name == canonical(name) and fnmatch.fnmatchcase(name, ref))


def _schema(annotation: Any) -> dict[str, Any]:
    """The JSON schema of one SDK annotation (unions and Literals included: the SDK uses both)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}
    if annotation in simple:
        return {"type": simple[annotation]}
    if annotation is bytes:
        return {"type": "string"}
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:
            return _schema(members[0])
        return {"anyOf": [_schema(member) for member in members]}
    if origin is list:
        return {"type": "array", **({"items": _schema(args[0])} if args else {})}
    if origin is dict:
        values = _schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", **({"additionalProperties": values} if values else {})}
    return {}


def predefined_tool(name: str) -> ToolDef:
    """The `ToolDef` of predefined tool `name` (an alias keeps its own name for the LLM)."""
    func = model_facing(name)  # the dispatcher, its result made readable for the model
    described_by = placeholder_of(canonical(name))
    signature = inspect.signature(placeholder_of(name))
    hints = typing.get_type_hints(placeholder_of(name))
    summary, docs = parse_docstring(described_by.__doc__)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in signature.parameters.values():
        schema = _schema(hints.get(param.name, param.annotation))
        if docs.get(param.name):
            schema["description"] = docs[param.name]
        properties[param.name] = schema
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    parameters = {"type": "object", "properties": properties, "required": required}
    return ToolDef(
        name=name,
        ref=name,
        func=func,
        schema={"type": "function", "function": {"name": name, "description": summary, "parameters": parameters}},
        description=summary,
        is_async=True,
        takes_context=False,
        runs_inline=True,
    )
