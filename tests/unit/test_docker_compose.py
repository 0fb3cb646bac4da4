"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): their shape is
checked instead, against the code they start — every command they run must exist, every
variable they set must be read, and the image must hold the whole project."""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import build_parser
from app.project import load_project

ROOT = Path(__file__).resolve().parents[2]
FERRY_SERVICES = ("ferry-worker", "ferry-history", "ferry-api")
#: What a project is made of, as the loader reads it (docs/project-format.md "Layout").
PROJECT_PARTS = ("agents", "tools", "schemas", "topics", "connectors", "ferry.yaml")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per line, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _image_copies() -> dict[str, str]:
    """COPY source → destination, for single-source COPY lines (the project parts)."""
    copies: dict[str, str] = {}
    for instruction, args in _dockerfile_instructions():
        parts = args.split()
        if instruction == "COPY" and len(parts) == 2:
            copies[parts[0]] = parts[1]
    return copies


def _assert_real_ferry_command(argv: list[str], where: str) -> None:
    """`ferry <sub> …` must parse with the real CLI: a sub-command or option that does not
    exist makes argparse exit 2, which is what the container would do at start."""
    assert argv[0] == "ferry", f"{where}: {argv}"
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{where}: `{' '.join(argv)}` is not a ferry command (argparse exit {exc.code})")
    assert callable(getattr(args, "handler", None)), f"{where}: `{' '.join(argv)}` has no handler"


def test_compose_declares_the_services_that_exist() -> None:
    services = _compose()["services"]
    assert set(services) == {"kafka", "postgres", "connect", "ferry-worker", "ferry-history", "ferry-api"}
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "debezium" in services["connect"]["image"]


def test_every_ferry_command_in_compose_and_dockerfile_is_a_real_sub_command() -> None:
    services = _compose()["services"]
    commands = 0
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, str):
            command = command.split()
        if command and command[0] == "ferry":
            _assert_real_ferry_command(command, f"docker-compose.yml service {name}")
            commands += 1
    for instruction, args in _dockerfile_instructions():
        if instruction in ("CMD", "ENTRYPOINT"):
            argv = yaml.safe_load(args) if args.startswith("[") else args.split()
            _assert_real_ferry_command(argv, f"Dockerfile {instruction}")
            commands += 1
    assert services["ferry-worker"]["command"] == ["ferry", "worker"]
    assert services["ferry-history"]["command"] == ["ferry", "history", "project"]
    assert services["ferry-api"]["command"] == ["ferry", "api"]
    assert commands >= 4


def test_compose_publishes_the_ports_users_connect_to() -> None:
    services = _compose()["services"]
    published = {name: [str(p).split(":")[0] for p in svc.get("ports", [])] for name, svc in services.items()}
    assert published["kafka"] == ["29092"]
    assert published["postgres"] == ["5432"]
    assert published["connect"] == ["8083"]
    assert published["ferry-worker"] == []  # workers scale out; they listen on nothing
    assert published["ferry-history"] == []
    assert published["ferry-api"] == ["8000"]  # `ferry api`'s default port


def test_kafka_advertises_an_address_each_side_can_reach() -> None:
    """A Kafka client connects to the address the broker advertises, not the one it was
    given: containers need `kafka:<port>`, host clients `localhost:<published port>`."""
    services = _compose()["services"]
    env = services["kafka"]["environment"]
    advertised = dict(
        reversed(item.split("://", 1)) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )  # address → listener name
    listeners = {item.split("://", 1)[0]: item.split(":")[-1] for item in env["KAFKA_LISTENERS"].split(",")}
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))

    broker = services["ferry-worker"]["environment"]["FERRY_BROKER"]
    assert broker in advertised, f"workers use {broker}, which the broker does not advertise"
    assert listeners[advertised[broker]] == broker.split(":")[1]

    for mapping in services["kafka"]["ports"]:
        host_port, container_port = str(mapping).split(":")
        name = advertised.get(f"localhost:{host_port}")
        assert name is not None, f"published port {host_port} is not advertised as localhost:{host_port}"
        assert listeners[name] == container_port
    assert set(listeners) <= set(protocols)


def test_ferry_processes_get_only_settings_ferry_reads() -> None:
    services = _compose()["services"]
    sources = "\n".join(path.read_text() for path in (ROOT / "app").rglob("*.py"))
    for name in FERRY_SERVICES:
        env = services[name]["environment"]
        assert env["FERRY_BROKER"] == "kafka:9092"
        assert env["FERRY_PROJECT"] == "/srv/ferry"
        # Keys are passed through from the host, never written in the file.
        assert env["GEMINI_API_KEY"] == "${GEMINI_API_KEY:-}"
        assert env["OPENAI_API_KEY"] == "${OPENAI_API_KEY:-}"
        for variable in env:
            if variable.startswith("FERRY_"):
                assert f'"{variable}"' in sources, f"{name} sets {variable}, which no Ferry code reads"
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert set(services[name]["depends_on"]) == {"kafka", "postgres"}
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_service_that_writes_the_history_waits_for_its_database() -> None:
    """`ferry history project` writes the store, and so does `ferry worker` once it runs
    the projector by default (it then has a --no-history option): both must wait for
    PostgreSQL, or their first write fails."""
    services = _compose()["services"]
    commands = {name: svc.get("command") or [] for name, svc in services.items()}
    worker = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["worker"]
    worker_writes = "--no-history" in {flag for action in worker._actions for flag in action.option_strings}
    writers = [
        name
        for name, command in commands.items()
        if command[:3] == ["ferry", "history", "project"]
        or (worker_writes and command[:2] == ["ferry", "worker"] and "--no-history" not in command)
    ]
    assert "ferry-history" in writers
    for name in writers:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_the_history_store_is_the_compose_postgres() -> None:
    """Without FERRY_DATABASE_URL the store is SQLite in the working directory, which the
    image's unprivileged user cannot write, and which each container would have alone."""
    services = _compose()["services"]
    pg = services["postgres"]["environment"]
    expected = f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    for name in FERRY_SERVICES:
        assert services[name]["environment"]["FERRY_DATABASE_URL"] == expected


def test_ferry_image_is_built_from_the_repository_dockerfile() -> None:
    services = _compose()["services"]
    assert services["ferry-worker"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "constraints.txt" in dockerfile
    assert "tesseract-ocr" in dockerfile
    assert "ferry api" not in dockerfile


def test_the_image_holds_the_whole_project() -> None:
    """Every project part of the repository is copied, to where the worker looks for it
    (FERRY_PROJECT, the working directory); every COPY source exists (docker build
    fails otherwise)."""
    copies = _image_copies()
    instructions = _dockerfile_instructions()
    workdir = next(args for instruction, args in instructions if instruction == "WORKDIR")
    for source in copies:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    present = [part for part in PROJECT_PARTS if (ROOT / part).exists()]
    assert {"agents", "tools", "schemas", "topics", "ferry.yaml"} <= set(present)
    for part in present:
        assert part in copies, f"the image lacks {part}"
        assert copies[part].rstrip("/") in (f"./{part}", part, f"{workdir}/{part}")
    env = " ".join(args for instruction, args in instructions if instruction == "ENV")
    assert re.search(rf"FERRY_PROJECT={re.escape(workdir)}\b", env)


def test_the_project_as_copied_into_the_image_loads_with_its_topics_and_models(tmp_path: Path) -> None:
    for source in _image_copies():
        if source.split("/")[0] not in PROJECT_PARTS:
            continue
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, tmp_path / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, tmp_path / source)
    project = load_project(tmp_path)
    assert "invoice-pipeline" in project.agents
    assert {spec.name or spec.pattern for spec in project.topics} >= {"runs.results", "agent.*.requests"}
    assert project.config.overrides_for("gemini/gemini-2.5-flash") is not None
