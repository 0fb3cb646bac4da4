"""Safe YAML loading that remembers where every key and value was written.

One parse gives both the data (PyYAML's safe constructor, so no object tags) and a
`Shadow` tree mirroring it with positions. The shadow travels with the data through the
`_defaults.yaml` merge, so an error in a merged value still points at the file and line
the value came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from app.contracts.errors import ConfigError
from app.project.problems import Loc

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PathKey = str | int


@dataclass
class Shadow:
    """Positions of one YAML node (`loc`), of its key if it is a map value, and of its children."""

    loc: Loc
    key_loc: Loc | None = None
    children: dict[PathKey, Shadow] = field(default_factory=dict)
    #: For a list item: its index in the file it was written in (merged lists renumber).
    index: int | None = None

    def find(self, path: tuple[PathKey, ...]) -> tuple[Shadow, bool]:
        """The deepest shadow along `path`, and whether the whole path was found."""
        node = self
        for part in path:
            child = node.children.get(part)
            if child is None:
                return node, False
            node = child
        return node, True

    def written_path(self, path: tuple[PathKey, ...]) -> tuple[PathKey, ...]:
        """`path` with list indices as written in the item's own file, for messages."""
        node: Shadow | None = self
        out: list[PathKey] = []
        for part in path:
            node = node.children.get(part) if node is not None else None
            out.append(node.index if isinstance(part, int) and node is not None and node.index is not None else part)
        return tuple(out)


class YamlSyntaxError(ConfigError):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass
class LoadedYaml:
    data: Any
    shadow: Shadow
    duplicate_keys: list[tuple[str, Loc]]


def _loc(file: str, mark: Any) -> Loc:
    return Loc(file, mark.line + 1, mark.column + 1)


def _walk(
    node: yaml.Node, file: str, duplicates: list[tuple[str, Loc]], key_loc: Loc | None, seen: dict[int, Shadow]
) -> Shadow:
    """Mirror the node tree; an aliased node is walked once (else `&a [*b, *b, ...]` chains
    would make this exponential, the "billion laughs" shape)."""
    if id(node) in seen:
        return seen[id(node)]
    shadow = Shadow(_loc(file, node.start_mark), key_loc)
    seen[id(node)] = shadow
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            kloc = _loc(file, key_node.start_mark)
            if key in shadow.children:
                duplicates.append((key, kloc))
            shadow.children[key] = _walk(value_node, file, duplicates, kloc, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = _walk(item, file, duplicates, None, seen)
            if child.index is None:
                child.index = index
            shadow.children[index] = child
    return shadow


def load_yaml(text: str, file: str) -> LoadedYaml:
    """Parse one YAML document safely; raise `YamlSyntaxError` with the position on bad YAML."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _loc(file, mark) if mark is not None else Loc(file)
        raise YamlSyntaxError(loc, f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Loc(file), f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if node is None:
        return LoadedYaml(None, Shadow(Loc(file)), [])
    duplicates: list[tuple[str, Loc]] = []
    shadow = _walk(node, file, duplicates, None, {})
    return LoadedYaml(data, shadow, duplicates)


def shadow_for_json(data: Any, file: str) -> Shadow:
    """A position-less shadow for data that came from JSON: everything points at line 1."""
    shadow = Shadow(Loc(file))
    if isinstance(data, dict):
        shadow.children = {k: shadow_for_json(v, file) for k, v in data.items()}
    elif isinstance(data, list):
        shadow.children = {i: shadow_for_json(v, file) for i, v in enumerate(data)}
    return shadow
