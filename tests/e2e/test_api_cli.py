"""`ferry keys` and `ferry api` as an operator runs them: separate processes, the real broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration import conftest as services_fixtures
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = pytest.mark.integration

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
ROOT = Path(__file__).resolve().parents[2]


def _ferry(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_keys_create_list_revoke_and_the_api_serving_them(tmp_path: Path, kafka_bootstrap: str) -> None:
    write_project(tmp_path / "project", {"echo": llm_agent()})
    env = {**os.environ, "FERRY_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}", "FERRY_BROKER": kafka_bootstrap}

    created = _ferry("keys", "create", "--tenant", "acme", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    key_id = token.removeprefix("fy_").split(".")[0]
    assert "not shown again" in created.stderr
    listed = _ferry("keys", "list", env=env)
    assert key_id in listed.stdout and "acme" in listed.stdout and token not in listed.stdout

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(port),
         "--project", str(tmp_path / "project")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.get(f"{url}/openapi.json").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "ferry api did not start serving within 60 s"
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {token}"}
        agents = httpx.get(f"{url}/v1/agents", headers=auth)
        assert agents.status_code == 200 and [a["name"] for a in agents.json()["agents"]] == ["echo"]

        revoked = _ferry("keys", "revoke", key_id, env=env)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(f"{url}/v1/agents", headers=auth).status_code == 401
        assert _ferry("keys", "revoke", key_id, env=env).returncode == 2
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_api_with_an_unreachable_broker_says_so_in_one_line(tmp_path: Path) -> None:
    write_project(tmp_path / "project", {"echo": llm_agent()})
    env = {**os.environ, "FERRY_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    result = _ferry("api", "--project", str(tmp_path / "project"), "--broker", f"127.0.0.1:{closed}", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ferry: cannot reach the Kafka broker at 127.0.0.1:{closed} — fix: start one with `ferry dev up`, "
        "or pass --broker / set FERRY_BROKER to a running Kafka"
    ]
