"""What every dev-stack service shares: its recorded state and the wait for readiness."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from app.devstack.errors import DevStackError
from app.devstack.process import is_alive, tail


class ServiceInfo(BaseModel):
    """A running service as `ferry dev status` reports it and `ferry dev down` finds it."""

    name: str
    address: str
    pid: int
    log_path: Path
    data_dir: Path


def wait_until_ready(
    name: str,
    pid: int,
    log_path: Path,
    probe: Callable[[], bool],
    *,
    timeout: float,
) -> None:
    """Poll `probe` until it succeeds; fail fast, with the log's last lines, if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        if not is_alive(pid):
            raise DevStackError(
                f"{name} exited during start-up; last log lines:\n{tail(log_path)}\n",
                f"read {log_path}",
            )
        time.sleep(0.25)
    raise DevStackError(
        f"{name} did not become ready within {timeout:.0f}s",
        f"read {log_path}; a slow machine may need FERRY_DEV_START_TIMEOUT raised",
    )
