"""Output schemas, `schemas/<name>.json`: parsed, checked as JSON Schema, and referenced by name.

A schema is checked once at load against its own metaschema (jsonschema picks the draft
from `$schema`, latest by default), so a typo in a schema fails `ferry lint`, not the
first production run that needs it. jsonschema is imported by the first schema file read:
a project without `schemas/` does not load it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from app.project.files import ProjectFiles
from app.project.problems import Loc, Problems
from app.project.validation import format_path
from app.project.yamlmarks import Shadow, YamlSyntaxError, load_yaml, shadow_for_json

SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def schema_name_problem(name: str) -> str | None:
    """Why `name` cannot be a schema name, or None; names are bare file stems, never paths."""
    if not SCHEMA_NAME.match(name) or ".." in name:
        return f"must be a schema name like 'invoice' for schemas/invoice.json, not a path (got {name!r})"
    return None


def _positions(text: str, rel: str, data: Any) -> Shadow:
    """JSON is (nearly) YAML, so PyYAML can give line numbers; fall back to line 1."""
    try:
        return load_yaml(text, rel).shadow
    except (YamlSyntaxError, yaml.YAMLError, RecursionError):
        return shadow_for_json(data, rel)


def read_json_file(path: Path, files: ProjectFiles, problems: Problems) -> tuple[Any, Shadow] | None:
    """A JSON file's data and positions, or None after reporting why it could not be read."""
    text = files.read_text(path)
    if text is None:
        return None
    rel = files.rel(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.error(Loc(rel, exc.lineno, exc.colno), f"invalid JSON: {exc.msg}")
        return None
    return data, _positions(text, rel, data)


def load_schema_file(path: Path, files: ProjectFiles, problems: Problems) -> dict[str, Any] | None:
    read = read_json_file(path, files, problems)
    if read is None:
        return None
    data, shadow = read
    if not isinstance(data, dict):
        problems.error(shadow.loc, "a schema must be a JSON object")
        return None
    if data.get("type") != "object":
        node, _ = shadow.find(("type",))
        problems.error(node.loc, f'the top-level type must be "object" (got {data.get("type")!r})', "type")
        return None
    import jsonschema

    validator = jsonschema.validators.validator_for(data)
    try:
        validator.check_schema(data)
    except jsonschema.SchemaError as exc:
        where = tuple(exc.path)
        node, _ = shadow.find(where)
        problems.error(node.loc, f"not a valid JSON Schema: {exc.message}", format_path(where))
        return None
    return data


def load_schemas(files: ProjectFiles, problems: Problems) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Every `schemas/*.json` (not recursive; names starting with '_' are helpers, skipped),
    and the names of those that exist but are broken (already reported)."""
    schemas: dict[str, dict[str, Any]] = {}
    broken: set[str] = set()
    for path in files.discover("schemas", (".json",), recursive=False):
        if path.name.startswith("_"):
            continue
        schema = load_schema_file(path, files, problems)
        if schema is not None:
            schemas[path.stem] = schema
        else:
            broken.add(path.stem)
    return schemas, broken
