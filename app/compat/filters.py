"""Connic's JSON filters (`db_find`, `retrieval_query`'s `metadata_filter`), evaluated on documents.

The operators are the ones the SDK documents: `$eq $ne $gt $gte $lt $lte $in $nin
$exists $regex $contains $elemMatch $and $or $nor $not`; `{"field": value}` is equality
and dot-notation reaches nested keys. Semantics follow MongoDB's where the SDK borrows
its names: an array field matches a value when any element does, a missing field
matches `$ne` / `$nin`, and comparisons between values of different kinds never match.
A filter the SDK would reject (an unknown operator) raises the `ToolError` of `filter_error`, which the tool
returns to the model as its error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from app.contracts.errors import ToolError

_MISSING = object()


def filter_error(message: str) -> ToolError:
    """A filter, sort or document the store cannot take: the tool's error, which the model sees."""
    return ToolError(message, "db")


def lookup(document: Any, path: str) -> Any:
    """The value at a dot path (`a.b.0.c`), or `_MISSING`."""
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or type(a) is type(b)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(value: Any, operand: Any) -> bool:
        if value is _MISSING or value is None or operand is None or not _comparable(value, operand):
            return False
        try:
            return op(value, operand)
        except TypeError:
            return False

    return check


def _equals(value: Any, operand: Any) -> bool:
    if value is _MISSING:
        return operand is None
    if isinstance(value, list) and not isinstance(operand, list):
        return any(_equals(item, operand) for item in value)
    if isinstance(value, bool) != isinstance(operand, bool):
        return False
    return bool(value == operand)


def _in(value: Any, operand: Any) -> bool:
    if not isinstance(operand, list):
        raise filter_error("$in / $nin take a list")
    return any(_equals(value, item) for item in operand)


def _regex(value: Any, operand: Any, options: str = "") -> bool:
    flags = re.IGNORECASE if "i" in options else 0
    flags |= re.MULTILINE if "m" in options else 0
    try:
        pattern = re.compile(str(operand), flags)
    except re.error as exc:
        raise filter_error(f"$regex {operand!r} is not a valid pattern: {exc}") from None
    if isinstance(value, list):
        return any(isinstance(item, str) and pattern.search(item) for item in value)
    return isinstance(value, str) and pattern.search(value) is not None


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, str):
        return isinstance(operand, str) and operand.lower() in value.lower()
    if isinstance(value, list):
        return any(_equals(item, operand) for item in value)
    return False


def _elem_match(value: Any, operand: Any) -> bool:
    if not isinstance(value, list) or not isinstance(operand, Mapping):
        return False
    operator_only = all(str(key).startswith("$") for key in operand)
    for item in value:
        if operator_only and _field_matches(item, operand):
            return True
        if not operator_only and isinstance(item, Mapping) and matches(item, operand):
            return True
    return False


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": _equals,
    "$ne": lambda value, operand: not _equals(value, operand),
    "$gt": _compare(lambda a, b: a > b),
    "$gte": _compare(lambda a, b: a >= b),
    "$lt": _compare(lambda a, b: a < b),
    "$lte": _compare(lambda a, b: a <= b),
    "$in": _in,
    "$nin": lambda value, operand: not _in(value, operand),
    "$exists": lambda value, operand: (value is not _MISSING) == bool(operand),
    "$contains": _contains,
    "$elemMatch": _elem_match,
}


def _field_matches(value: Any, condition: Any) -> bool:
    """One field's condition: a plain value (equality) or a map of operators."""
    if not (isinstance(condition, Mapping) and condition and all(str(k).startswith("$") for k in condition)):
        return _equals(value, condition)
    for op, operand in condition.items():
        if op == "$options":
            continue
        if op == "$regex":
            if not _regex(value, operand, str(condition.get("$options", ""))):
                return False
        elif op == "$not":
            if _field_matches(value, operand):
                return False
        elif op == "$near":
            raise filter_error("$near is not supported by Ferry's document store")
        elif op in _COMPARISONS:
            if not _COMPARISONS[op](value, operand):
                return False
        else:
            raise filter_error(f"unknown filter operator {op!r}")
    return True


def matches(document: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether `document` satisfies `filter` (None or {} match everything)."""
    if not filter:
        return True
    if not isinstance(filter, Mapping):
        raise filter_error("a filter must be a JSON object")
    for key, condition in filter.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list) or not all(isinstance(c, Mapping) for c in condition):
                raise filter_error(f"{key} takes a list of filters")
            results = [matches(document, c) for c in condition]
            if key == "$and" and not all(results):
                return False
            if key == "$or" and not any(results):
                return False
            if key == "$nor" and any(results):
                return False
        elif key == "$not":
            if not isinstance(condition, Mapping):
                raise filter_error("$not takes a filter")
            if matches(document, condition):
                return False
        elif key.startswith("$"):
            raise filter_error(f"unknown top-level filter operator {key!r}")
        elif not _field_matches(lookup(document, key), condition):
            return False
    return True


def sort_key(path: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    """Missing and null first (as MongoDB sorts them), then numbers, strings, the rest as text."""

    def key(document: Mapping[str, Any]) -> tuple[int, Any]:
        value = lookup(document, path)
        if value is _MISSING or value is None:
            return (0, 0)
        if isinstance(value, bool):
            return (3, int(value))
        if isinstance(value, int | float):
            return (1, value)
        if isinstance(value, str):
            return (2, value)
        return (4, repr(value))

    return key


def project(document: Mapping[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """The document with only `fields` (dot paths; `_id` always kept)."""
    if not fields:
        return dict(document)
    kept: dict[str, Any] = {"_id": document["_id"]} if "_id" in document else {}
    for path in fields:
        value = lookup(document, path)
        if value is _MISSING:
            continue
        target = kept
        parts = path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return kept


def equality_fields(filter: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level `{"field": value}` equalities of a filter (what db_upsert inserts)."""
    return {
        key: value
        for key, value in filter.items()
        if not key.startswith("$")
        and "." not in key
        and not (isinstance(value, Mapping) and any(str(k).startswith("$") for k in value))
    }
