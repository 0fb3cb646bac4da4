"""`ferry dev up / status / down` as a user runs them, in separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ferry(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FERRY_BROKER"}
    return subprocess.run(
        [sys.executable, "-m", "app", "dev", "--home", str(home), *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout,
    )  # fmt: skip


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


@pytest.mark.e2e
def test_up_status_down_leaves_no_process_behind() -> None:
    home = Path(tempfile.mkdtemp(prefix="ferry-e2e-dev-"))
    home.chmod(0o755)
    try:
        up = _ferry(home, "up")
        assert up.returncode == 0, up.stderr

        status = _ferry(home, "status")
        assert status.returncode == 0, status.stdout
        rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
        assert {name: row[1] for name, row in rows.items()} == {"kafka": "up", "postgres": "up", "connect": "up"}
        assert rows["kafka"][3].startswith("127.0.0.1:")
        assert rows["postgres"][3].startswith("postgresql://ferry@127.0.0.1:")
        assert rows["connect"][3].startswith("http://127.0.0.1:")
        assert all(int(row[2]) > 0 for row in rows.values())
        assert len(_processes_mentioning(str(home))) >= 3

        down = _ferry(home, "down")
        assert down.returncode == 0, down.stderr
        assert _processes_mentioning(str(home)) == []
        after = _ferry(home, "status")
        assert after.returncode == 1  # the stack is not up: the check ran and failed
        assert all(line.split()[1] == "stopped" for line in after.stdout.splitlines()[1:])
    finally:
        _ferry(home, "down")
