"""`--home` where users put it, and a stack not found says which home was searched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devstack.service import ServiceInfo
from app.devstack.stack import StackState

ROOT = Path(__file__).resolve().parents[3]
ADDRESS = "127.0.0.1:19092"


def _ferry(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("FERRY_HOME", "FERRY_BROKER")}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env}, timeout=60,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home whose state records a running Kafka (a live stand-in process), as `ferry dev up` leaves it."""
    stand_in = subprocess.Popen(["sleep", "300"])
    home = tmp_path / "stack-home"
    home.mkdir()
    kafka = ServiceInfo(
        name="kafka", address=ADDRESS, pid=stand_in.pid, log_path=home / "kafka.log", data_dir=home / "kafka"
    )
    (home / "state.json").write_text(StackState(services={"kafka": kafka}).model_dump_json())
    try:
        yield home
    finally:
        stand_in.kill()
        stand_in.wait()


def _kafka_row(completed: subprocess.CompletedProcess[str]) -> list[str]:
    rows = {line.split()[0]: line.split() for line in completed.stdout.splitlines()[1:]}
    return rows["kafka"]


@pytest.mark.parametrize(
    "args",
    [
        ("dev", "status", "--home", "{home}"),
        ("dev", "--home", "{home}", "status"),
        ("dev", "--home", "/nowhere/else", "status", "--home", "{home}"),  # the action's own wins
    ],
    ids=["after the action", "before the action", "both"],
)
def test_home_is_accepted_before_or_after_the_action(home: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    completed = _ferry(*(arg.format(home=home) for arg in args), cwd=tmp_path)
    assert "Traceback" not in completed.stderr
    assert completed.returncode == 1, completed.stderr  # postgres and connect are not up
    kafka = _kafka_row(completed)
    assert (kafka[1], kafka[3]) == ("up", ADDRESS)


def test_up_with_home_after_the_action_uses_that_home(home: Path, tmp_path: Path) -> None:
    completed = _ferry("dev", "up", "--only", "kafka", "--home", str(home), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    assert f"ferry: kafka already running at {ADDRESS}" in lines
    assert f"ferry: not the default home: `export FERRY_HOME={home}` lets every other command find this stack" in lines


def test_ferry_home_finds_the_stack(home: Path, tmp_path: Path) -> None:
    completed = _ferry("dev", "status", cwd=tmp_path, FERRY_HOME=str(home))
    assert _kafka_row(completed)[1] == "up"


def test_status_without_a_stack_names_the_home_searched_and_how_to_choose_another(tmp_path: Path) -> None:
    completed = _ferry("dev", "status", cwd=tmp_path)
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [
        f"ferry: no dev stack running in {tmp_path.resolve()}/.ferry/dev (the default: no --home, no $FERRY_HOME); "
        "for a stack started with --home DIR: `ferry dev status --home DIR` or FERRY_HOME=DIR"
    ]


def test_down_of_an_empty_home_says_so(tmp_path: Path) -> None:
    completed = _ferry("dev", "down", "--home", str(tmp_path / "empty"))
    assert completed.returncode == 0
    assert completed.stderr == f"ferry: no dev stack recorded in {tmp_path / 'empty'}: nothing to stop\n"
