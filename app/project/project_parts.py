"""The project-level files beside `agents/`: `ferry.yaml`, `topics/*.yaml`, `connectors/*`."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app.project.agent_files import parse_yaml_file
from app.project.config import ProjectConfig
from app.project.connectors import (
    CONNECTOR_CLASSES,
    ConnectorSpec,
    InboundConnectorSpec,
    KafkaConnectSpec,
    S3ConnectorSpec,
    ScheduleConnectorSpec,
)
from app.project.files import ProjectFiles
from app.project.problems import Problems
from app.project.schemas import read_json_file
from app.project.topics import TopicsFile, TopicSpec
from app.project.unknown_keys import report_unknown_keys
from app.project.validation import report_validation_error
from app.project.yamlmarks import Shadow

CONFIG_FILE = "ferry.yaml"


def _validate(model: type[BaseModel], data: Any, shadow: Shadow, problems: Problems) -> Any:
    report_unknown_keys(model, data, shadow, problems)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        report_validation_error(exc, model, shadow, problems)
        return None


def _read_map(path: Path, files: ProjectFiles, problems: Problems) -> tuple[Any, Shadow] | None:
    """A YAML or JSON file that must hold a map; JSON gets line numbers via the YAML parser."""
    if path.suffix == ".json":
        read = read_json_file(path, files, problems)
        if read is None:
            return None
        data, shadow = read
    else:
        loaded = parse_yaml_file(files, path, problems)
        if loaded is None:
            return None
        data, shadow = loaded.data, loaded.shadow
    if not isinstance(data, dict):
        problems.error(shadow.loc, "must be a map")
        return None
    return data, shadow


def load_config(files: ProjectFiles, problems: Problems) -> ProjectConfig:
    path = files.root / CONFIG_FILE
    if not path.is_file():
        return ProjectConfig()
    read = _read_map(path, files, problems)
    if read is None:
        return ProjectConfig()
    return _validate(ProjectConfig, read[0], read[1], problems) or ProjectConfig()


def load_topics(files: ProjectFiles, problems: Problems) -> tuple[TopicSpec, ...]:
    topics: list[TopicSpec] = []
    owners: dict[str, str] = {}
    for path in files.discover("topics", (".yaml", ".yml"), recursive=False):
        read = _read_map(path, files, problems)
        if read is None:
            continue
        parsed = _validate(TopicsFile, read[0], read[1], problems)
        if parsed is None:
            continue
        for index, topic in enumerate(parsed.topics):
            ident = topic.name or f"pattern {topic.pattern}"
            node, _ = read[1].find(("topics", index))
            if ident in owners:
                problems.error(node.loc, f"topic {ident!r} is already declared in {owners[ident]}", f"topics[{index}]")
                continue
            owners[ident] = files.rel(path)
            topics.append(topic)
    return tuple(topics)


def load_connectors(
    files: ProjectFiles, problems: Problems, agents: Collection[str] | None = None
) -> dict[str, ConnectorSpec]:
    """The connector files; with `agents`, an inbound or fed connector naming another agent is an error."""
    connectors: dict[str, ConnectorSpec] = {}
    for path in files.discover("connectors", (".yaml", ".yml", ".json"), recursive=False):
        read = _read_map(path, files, problems)
        if read is None:
            continue
        data, shadow = read
        kind = data.get("type", "kafka-connect")
        model = CONNECTOR_CLASSES.get(kind) if isinstance(kind, str) else None
        if model is None:
            node, _ = shadow.find(("type",))
            kinds = ", ".join(repr(k) for k in CONNECTOR_CLASSES)
            problems.error(node.loc, f"must be one of {kinds} (got {kind!r})", "type")
            continue
        spec = _validate(model, data, shadow, problems)
        if spec is None:
            continue
        if agents is not None and not _agents_known(spec, agents, shadow, problems):
            continue
        if spec.name in connectors:
            node, _ = shadow.find(("name",))
            problems.error(node.loc, f"connector name {spec.name!r} is used twice", "name")
            continue
        connectors[spec.name] = spec
    return connectors


def _agents_known(spec: ConnectorSpec, agents: Collection[str], shadow: Shadow, problems: Problems) -> bool:
    named: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(spec, InboundConnectorSpec | S3ConnectorSpec | ScheduleConnectorSpec):
        named.append((("agent",), spec.agent))
    elif isinstance(spec, KafkaConnectSpec) and spec.feed is not None:
        named.extend((("feed", "agents", i), agent) for i, agent in enumerate(spec.feed.agents))
    known = True
    for path, agent in named:
        if agent not in agents:
            node, _ = shadow.find(path)
            problems.error(node.loc, f"no agent named {agent!r} in agents/", ".".join(str(p) for p in path))
            known = False
    return known
