"""Stopping a service ends its whole process group, even a process that ignores SIGTERM."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.devstack.process import is_alive, spawn, stop_process, tail


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(state[2]) == pgid and state[0] != "Z":
            members.append(int(entry.name))
    return members


def test_stop_kills_a_group_that_ignores_sigterm_and_leaves_nothing(tmp_path: Path) -> None:
    process = spawn(["sh", "-c", 'trap "" TERM; sleep 300 & sleep 300 & echo started; wait'], tmp_path / "svc.log")
    deadline = time.monotonic() + 5
    while "started" not in tail(tmp_path / "svc.log") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_group_members(process.pid)) == 3  # the shell and its two sleeps

    stop_process(process.pid, timeout=0.5)

    assert not is_alive(process.pid)
    assert _group_members(process.pid) == []


def test_stop_of_a_process_already_gone_is_quiet(tmp_path: Path) -> None:
    process = spawn(["true"], tmp_path / "svc.log")
    process.wait()
    stop_process(process.pid, timeout=0.5)
    assert not is_alive(process.pid)


def test_spawned_services_survive_their_parent_session(tmp_path: Path) -> None:
    # Services outlive `ferry dev up`: each runs in a session of its own.
    process = spawn(["sleep", "30"], tmp_path / "svc.log")
    try:
        assert os.getsid(process.pid) == process.pid
        assert os.getsid(process.pid) != os.getsid(0)
    finally:
        stop_process(process.pid, timeout=1)
