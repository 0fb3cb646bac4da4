"""Agent files: discovery, `_defaults.yaml` cascade, unknown keys, and model validation.

Each agent is validated on its own and its problems are collected, so one broken agent
never hides the mistakes of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app.project.files import ProjectFiles
from app.project.merge import DEFAULTS_FORBIDDEN_KEYS, merge_values
from app.project.models import AGENT_CLASSES, AgentSpec
from app.project.problems import Loc, Problems
from app.project.unknown_keys import ALL_AGENT_KEYS, report_unknown_key, unknown_agent_keys, unknown_keys
from app.project.validation import format_path, report_validation_error
from app.project.yamlmarks import LoadedYaml, Shadow, YamlSyntaxError, load_yaml

IDENTITY_KEYS: tuple[str, ...] = ("version", "name", "description")
#: Keys whose value is free-form for the model but not a sub-model (tools entries are refs).
_OPAQUE = frozenset({"tools"})


@dataclass
class AgentSource:
    """One agent as read: its file, merged raw data with positions, and the spec if valid."""

    file: str
    data: dict[str, Any]
    shadow: Shadow
    spec: AgentSpec | None = None


def parse_yaml_file(files: ProjectFiles, path: Path, problems: Problems) -> LoadedYaml | None:
    """Read and parse one YAML file, reporting unreadable files, bad YAML and duplicate keys."""
    text = files.read_text(path)
    if text is None:
        return None
    rel = files.rel(path)
    try:
        loaded = load_yaml(text, rel)
    except YamlSyntaxError as exc:
        problems.error(exc.loc, exc.message)
        return None
    for key, loc in loaded.duplicate_keys:
        problems.error(loc, f"duplicate key {key!r}; only the last one would count", key)
    return loaded


class DefaultsCascade:
    """The `_defaults.yaml` files of `agents/`, each parsed and checked once."""

    def __init__(self, files: ProjectFiles, problems: Problems) -> None:
        self.files = files
        self.problems = problems
        self.agents_dir = files.root / "agents"
        self._cache: dict[Path, LoadedYaml | None] = {}

    def _load(self, directory: Path) -> LoadedYaml | None:
        if directory in self._cache:
            return self._cache[directory]
        path = directory / "_defaults.yaml"
        loaded = parse_yaml_file(self.files, path, self.problems) if path.is_file() else None
        if loaded is not None:
            loaded = self._check(loaded)
        self._cache[directory] = loaded
        return loaded

    def _check(self, loaded: LoadedYaml) -> LoadedYaml | None:
        if loaded.data is None:
            return None
        if not isinstance(loaded.data, dict):
            self.problems.error(loaded.shadow.loc, "a _defaults.yaml file must be a map of agent keys")
            return None
        data = dict(loaded.data)
        for key in DEFAULTS_FORBIDDEN_KEYS:
            if key in data:
                shadow = loaded.shadow.children[key]
                self.problems.error(
                    shadow.key_loc or shadow.loc, "may not appear in _defaults.yaml: set it in each agent file", key
                )
                del data[key]
        for path, owner in unknown_agent_keys(data, opaque=_OPAQUE):
            report_unknown_key(path, owner, loaded.shadow, self.problems)
        return LoadedYaml(data, loaded.shadow, [])

    def chain(self, agent_file: Path) -> list[LoadedYaml]:
        """Defaults from the root of `agents/` down to the agent's own folder."""
        relative = agent_file.parent.relative_to(self.agents_dir)
        directories = [self.agents_dir]
        for part in relative.parts:
            directories.append(directories[-1] / part)
        return [d for d in map(self._load, directories) if d is not None]


def discover_agent_files(files: ProjectFiles, problems: Problems) -> list[Path]:
    for path in files.discover("agents", (".yml",)):
        problems.warning(Loc(files.rel(path)), "ignored: agent files must end in .yaml")
    return [p for p in files.discover("agents", (".yaml",)) if p.name != "_defaults.yaml"]


def load_agent(path: Path, files: ProjectFiles, defaults: DefaultsCascade, problems: Problems) -> AgentSource | None:
    """Read, merge and validate one agent file; None if it is not even a YAML map."""
    loaded = parse_yaml_file(files, path, problems)
    if loaded is None:
        return None
    rel = files.rel(path)
    if not isinstance(loaded.data, dict):
        problems.error(
            loaded.shadow.loc,
            "an agent file must be a YAML map (got "
            f"{'an empty file' if loaded.data is None else type(loaded.data).__name__})",
        )
        return None
    data: Any = {}
    shadow = Shadow(loaded.shadow.loc)
    for layer in (*defaults.chain(path), loaded):
        data, shadow = merge_values(data, shadow, layer.data, layer.shadow)
    for key in IDENTITY_KEYS:
        if key in data and key not in loaded.data:
            problems.error(
                loaded.shadow.loc, "must be set in the agent file itself, not inherited from _defaults.yaml", key
            )
    source = AgentSource(rel, data, shadow)
    kind = data.get("type", "llm")
    model = AGENT_CLASSES.get(kind) if isinstance(kind, str) else None
    if model is None:
        node, _ = shadow.find(("type",))
        problems.error(node.loc, f"must be 'llm', 'sequential' or 'tool' (got {kind!r})", "type")
        return source
    _check_unknown(source, model, problems)
    try:
        source.spec = model.model_validate(data)  # type: ignore[assignment]
    except ValidationError as exc:
        report_validation_error(exc, model, shadow, problems)
    return source


def _check_unknown(source: AgentSource, model: type[BaseModel], problems: Problems) -> None:
    """Report each unknown key once, where it was written (keys from defaults were reported there)."""
    for path, owner in unknown_keys(model, source.data, opaque=_OPAQUE):
        node, _ = source.shadow.find(path)
        where = node.key_loc or node.loc
        if where.file != source.file:
            continue
        if len(path) == 1 and path[0] in ALL_AGENT_KEYS:
            kind = source.data.get("type", "llm")
            problems.warning(where, f"is not used by {kind} agents; ignored", format_path(path))
        else:
            report_unknown_key(path, owner, source.shadow, problems)
