"""`ferry connectors apply` without a Connect to talk to, or without the variables its configs need."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SINK_ENV = {"FERRY_SINK_JDBC_URL": "jdbc:postgresql://db/x", "FERRY_SINK_DB_USER": "u", "FERRY_SINK_DB_PASSWORD": "p"}


def _ferry(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_SINK_")}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=ROOT, env=clean | env, timeout=120
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_connect_is_one_line_and_exit_2() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    completed = _ferry("connectors", "apply", "--connect-url", url, **SINK_ENV)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"ferry: cannot reach Kafka Connect at {url} — fix: start it with `ferry dev up`, "
        "or pass --connect-url / set FERRY_CONNECT_URL to a running Connect"
    ]


def test_a_missing_variable_is_named_before_anything_is_sent() -> None:
    env = {k: v for k, v in SINK_ENV.items() if k != "FERRY_SINK_DB_PASSWORD"}
    completed = _ferry("connectors", "apply", "--connect-url", f"http://127.0.0.1:{_closed_port()}", **env)
    assert completed.returncode == 2
    assert "FERRY_SINK_DB_PASSWORD" in completed.stderr and "Traceback" not in completed.stderr
