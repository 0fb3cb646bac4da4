"""Keys a file holds that its model does not declare, and what each one most likely is.

    a Connic key Ferry does not support    warning, saying what will not happen
    close to a known key (`temprature`)    error, naming the nearest key: the setting the
                                           user meant would otherwise quietly keep its default
    anything else                          warning, the key is ignored (a team's own note,
                                           a key of a newer Connic version)

The models ignore unknown keys (`extra="ignore"`) so that these reports keep their file
positions and their three kinds apart; a pydantic "extra forbidden" error would have neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from app.project.models import AGENT_CLASSES, LLMAgentSpec
from app.project.problems import Problems, Severity
from app.project.suggest import did_you_mean
from app.project.unsupported import connic_only_key, connic_only_keys
from app.project.validation import field_model, format_path, known_keys
from app.project.yamlmarks import PathKey, Shadow

KeyPath = tuple[PathKey, ...]

#: Every top-level key of some agent type: a key of another type is "not used", not unknown.
ALL_AGENT_KEYS: frozenset[str] = frozenset().union(*(known_keys(c) for c in AGENT_CLASSES.values()))


def unknown_keys(
    model: type[BaseModel], data: Any, path: KeyPath = (), opaque: frozenset[str] = frozenset()
) -> Iterator[tuple[KeyPath, type[BaseModel]]]:
    """Every key in `data` that `model` (recursively) does not declare, with the model it was found in."""
    if not isinstance(data, dict):
        return
    keys = known_keys(model)
    for key, value in data.items():
        if key not in keys:
            yield (*path, key), model
            continue
        if key in opaque:
            continue
        sub, kind = field_model(model, key)
        if sub is None:
            continue
        if kind == "one":
            yield from unknown_keys(sub, value, (*path, key))
        elif kind == "map" and isinstance(value, dict):
            for name, item in value.items():
                yield from unknown_keys(sub, item, (*path, key, name))
        elif kind == "list" and isinstance(value, list):
            for index, item in enumerate(value):
                yield from unknown_keys(sub, item, (*path, key, index))


def unknown_agent_keys(data: Any, opaque: frozenset[str] = frozenset()) -> Iterator[tuple[KeyPath, type[BaseModel]]]:
    """Unknown keys of a `_defaults.yaml`, which may hold keys of any agent type.

    A top-level key is known if some agent type declares it; its nested keys are checked
    against that type's model (the nested blocks are the same model in every type).
    """
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        owner = next((c for c in AGENT_CLASSES.values() if key in known_keys(c)), None)
        if owner is None:
            yield (key,), LLMAgentSpec
        else:
            yield from unknown_keys(owner, {key: value}, opaque=opaque)


def key_candidates(owner: type[BaseModel]) -> frozenset[str]:
    """The keys a misspelling of a key of `owner` may have been meant as."""
    known = ALL_AGENT_KEYS if owner in AGENT_CLASSES.values() else known_keys(owner)
    return known | connic_only_keys(owner)


def judge(owner: type[BaseModel], key: PathKey) -> tuple[Severity, str]:
    """Severity and message for one unknown key of `owner` (see the module docstring)."""
    name = str(key)
    consequence = connic_only_key(owner, name)
    if consequence is not None:
        return "warning", consequence
    hint = did_you_mean(name, key_candidates(owner))
    if hint:
        return "error", f"unknown key `{name}`{hint}"
    return "warning", "unknown key; Ferry ignores it"


def report_unknown_key(path: KeyPath, owner: type[BaseModel], shadow: Shadow, problems: Problems) -> None:
    """Report one unknown key at the position of the key itself."""
    node, _ = shadow.find(path)
    severity, message = judge(owner, path[-1])
    report = problems.error if severity == "error" else problems.warning
    report(node.key_loc or node.loc, message, format_path(path))


def report_unknown_keys(model: type[BaseModel], data: Any, shadow: Shadow, problems: Problems) -> None:
    """Check a whole file's data against `model` (ferry.yaml, topics, connectors)."""
    for path, owner in unknown_keys(model, data):
        report_unknown_key(path, owner, shadow, problems)
