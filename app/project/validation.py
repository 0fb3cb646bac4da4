"""Turning pydantic errors into positioned, readable problems, and the model lookups they need.

pydantic says "Input should be less than or equal to 10"; a user editing YAML wants
"retry_options.attempts: must be between 1 and 10 (got 20)" at the line they wrote.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app.project.problems import Problems
from app.project.yamlmarks import PathKey, Shadow


def format_path(path: tuple[PathKey, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _unwrap(annotation: Any) -> Any:
    """`X | None` → X; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _field_bounds(model: type[BaseModel], loc: tuple[PathKey, ...]) -> dict[str, Any]:
    """ge/gt/le/lt of the field at `loc`, so a message can state the whole allowed range."""
    current: type[BaseModel] | None = model
    info = None
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if current is None or not isinstance(part, str):
            return {}
        info = _field_info(current, part)
        if info is None:
            return {}
        current, kind = field_model(current, part)
        if kind in ("map", "list") and parts:
            parts.pop(0)  # the key or index inside the container
    bounds: dict[str, Any] = {}
    for meta in info.metadata if info is not None else []:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(meta, getattr(annotated_types, name.capitalize())):
                bounds[name] = getattr(meta, name)
    return bounds


def _got(value: Any) -> str:
    return f"(got {value!r})" if not isinstance(value, (dict, list)) else f"(got a {type(value).__name__})"


def _range_message(bounds: dict[str, Any], value: Any) -> str:
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    if "ge" in bounds and "le" in bounds:
        return f"must be between {low:g} and {high:g} {_got(value)}"
    parts = []
    if "ge" in bounds:
        parts.append(f"at least {low:g}")
    if "gt" in bounds:
        parts.append(f"greater than {low:g}")
    if "le" in bounds:
        parts.append(f"at most {high:g}")
    if "lt" in bounds:
        parts.append(f"less than {high:g}")
    return f"must be {' and '.join(parts)} {_got(value)}"


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a map",
    "model": "a map",
    "list": "a list",
    "tuple": "a list",
}


def humanize(error: ErrorDetails, model: type[BaseModel]) -> str:
    """One pydantic error as the sentence printed after the key path."""
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == "missing":
        return "is required"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return _range_message(_field_bounds(model, loc) or dict(ctx), value)
    if kind == "literal_error":
        if loc == ("version",):
            hint = " (a quoted string)" if isinstance(value, (int, float)) else ""
            return f'must be "1.0"{hint} {_got(value)}'
        return f"must be {ctx.get('expected')} {_got(value)}"
    if kind in ("too_long",):
        return f"must have at most {ctx.get('max_length')} entries (got {ctx.get('actual_length')})"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "finite_number":
        return f"must be a finite number {_got(value)}"
    for prefix, words in _TYPE_WORDS.items():
        if kind.startswith(prefix):
            return f"must be {words} {_got(value)}"
    return f"{error['msg']} {_got(value)}"


def report_validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    shadow: Shadow,
    problems: Problems,
    prefix: tuple[PathKey, ...] = (),
) -> None:
    """Add one positioned problem per pydantic error (all of them, not just the first)."""
    errors = exc.errors(include_url=False)
    locs = [tuple(error["loc"]) for error in errors]
    for error, loc in zip(errors, locs, strict=True):
        # pydantic adds "too short" to a list whose items all failed: noise next to the real error.
        if error["type"] == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs):
            continue
        node, _ = shadow.find(loc)
        problems.error(node.loc, humanize(error, model), format_path(prefix + shadow.written_path(loc)))


def _field_info(model: type[BaseModel], key: str) -> Any:
    return model.model_fields.get(key) or next((f for f in model.model_fields.values() if f.alias == key), None)


@functools.cache  # a pure function of two immutable arguments, called for every key of every file
def field_model(model: type[BaseModel], key: str) -> tuple[type[BaseModel] | None, str]:
    """For a known key: the model of its value and its container kind (`one`, `map`, `list`)."""
    info = _field_info(model, key)
    if info is None:
        return None, ""
    annotation = _unwrap(info.annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(origin, type) and issubclass(origin, Mapping) and len(args) == 2:
        return _model_of(args[1]), "map"
    if origin is tuple and args and args[-1] is Ellipsis:
        return _model_of(args[0]), "list"
    return _model_of(annotation), "one"


@functools.cache
def known_keys(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(f.alias or name for name, f in model.model_fields.items())
