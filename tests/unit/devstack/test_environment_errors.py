"""A bad environment gives one line with the cause and the fix, never a stack trace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.devstack.errors import DevStackError
from app.devstack.kafka import start_kafka
from app.devstack.ports import claim_port
from app.devstack.toolchain import require_java, require_program

ROOT = Path(__file__).resolve().parents[3]


def _ferry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A developer's FERRY_BROKER would add an `external` broker row to every status.
    inherited = {k: v for k, v in os.environ.items() if k != "FERRY_BROKER"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=ROOT,
        env={**inherited, **(env or {})}, timeout=60,
    )  # fmt: skip


def test_missing_java_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevStackError) as caught:
        require_java()
    assert caught.value.cause == "`java` is not on PATH"
    assert "apt-get install -y openjdk-17-jre-headless" in caught.value.fix


def test_old_java_is_refused_with_the_version_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_java = tmp_path / "java"
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake_java.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevStackError, match="Java 11 found, Kafka 4 needs Java 17"):
        require_java()


def test_missing_maven_names_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevStackError, match="apt-get install -y maven"):
        require_program("mvn", "maven")


def test_port_in_use_says_which_and_how_to_pick_another() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DevStackError) as caught:
            claim_port(port, "Kafka", "--kafka-port")
    assert caught.value.cause == f"Kafka port {port} on 127.0.0.1 is in use"
    assert "--kafka-port 0" in caught.value.fix


def test_foreign_kafka_data_dir_is_refused_before_starting(tmp_path: Path) -> None:
    storage = tmp_path / "kafka" / "log"
    storage.mkdir(parents=True)
    (storage / "meta.properties").write_text("cluster.id=someone-else\nnode.id=7\n")
    with pytest.raises(DevStackError) as caught:
        start_kafka(tmp_path / "kafka", tmp_path / "logs", timeout=5)
    assert "holds Kafka data that Ferry did not create" in caught.value.cause
    assert f"rm -rf {storage}" in caught.value.fix


def test_cli_reports_a_busy_port_in_one_line_without_traceback(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        completed = _ferry("dev", "--home", str(tmp_path), "up", "--only", "postgres", "--postgres-port", str(port))
    assert completed.returncode == 2  # the environment is the user's to fix
    assert "Traceback" not in completed.stderr
    assert completed.stderr.splitlines() == [
        "ferry: starting postgres…",
        f"ferry: PostgreSQL port {port} on 127.0.0.1 is in use — fix: stop what listens there "
        f"(ss -ltnp 'sport = :{port}') or pass --postgres-port 0 to pick a free port",
    ]


def test_cli_refuses_unknown_services(tmp_path: Path) -> None:
    completed = _ferry("dev", "--home", str(tmp_path), "up", "--only", "kafka,redis")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "ferry: unknown service(s) redis — fix: choose --only from kafka, postgres, connect"
    ]


def test_status_of_a_stack_never_started_shows_every_service_stopped(tmp_path: Path) -> None:
    completed = _ferry("dev", "--home", str(tmp_path), "status")
    assert completed.returncode == 1
    rows = {line.split()[0]: line.split()[1] for line in completed.stdout.splitlines()[1:]}
    assert rows == {"kafka": "stopped", "postgres": "stopped", "connect": "stopped"}
