"""docker-compose.yml cannot run here (no Docker engine); its shape is checked instead."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_declares_the_production_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"kafka", "postgres", "connect", "ferry-worker", "ferry-api"}
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "debezium" in services["connect"]["image"]


def test_compose_publishes_the_ports_users_connect_to() -> None:
    services = _compose()["services"]
    published = {name: [str(p).split(":")[0] for p in svc.get("ports", [])] for name, svc in services.items()}
    assert published["kafka"] == ["9092"]
    assert published["postgres"] == ["5432"]
    assert published["connect"] == ["8083"]
    assert published["ferry-api"] == ["8080"]
    assert published["ferry-worker"] == []  # workers scale out; they listen on nothing


def test_ferry_processes_get_broker_database_and_keys_from_the_environment() -> None:
    services = _compose()["services"]
    for name in ("ferry-worker", "ferry-api"):
        env = services[name]["environment"]
        assert env["FERRY_BROKER"] == "kafka:9092"
        assert env["FERRY_DATABASE_URL"].startswith("postgresql://")
        assert env["FERRY_CONNECT_URL"] == "http://connect:8083"
        # Keys are passed through from the host, never written in the file.
        assert env["GEMINI_API_KEY"] == "${GEMINI_API_KEY:-}"
        assert set(services[name]["depends_on"]) == {"kafka", "postgres"}
    assert services["ferry-worker"]["command"] == ["ferry", "worker"]
    assert services["ferry-api"]["command"][:2] == ["ferry", "api"]


def test_ferry_image_is_built_from_the_repository_dockerfile() -> None:
    services = _compose()["services"]
    assert services["ferry-worker"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "constraints.txt" in dockerfile
    assert "tesseract-ocr" in dockerfile
