"""One exit-code convention for every command, and one line on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import app.cli
import app.cli.lint
from app.cli import main
from app.cli.process_main import exit_code_for
from app.contracts.errors import BadInputError, ConfigError, InternalError, ServiceUnreachableError

ROOT = Path(__file__).resolve().parents[3]


def _ferry(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, **env}, timeout=120,
    )  # fmt: skip


def test_help_documents_the_exit_codes() -> None:
    completed = _ferry("--help")
    assert completed.returncode == 0
    assert "exit status:" in completed.stdout
    for line in (
        "0    success",
        "1    the command ran and what it did failed",
        "2    a user error",
        "130  interrupted",
    ):
        assert line in completed.stdout
    assert "FERRY_DEBUG=1" in completed.stdout


def test_bad_arguments_exit_2() -> None:
    completed = _ferry("run")
    assert completed.returncode == 2 and "Traceback" not in completed.stderr


def test_a_project_that_does_not_exist_is_one_line_and_exit_2(tmp_path: Path) -> None:
    completed = _ferry("run", "agent", "--project", str(tmp_path / "nowhere"))
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.startswith("ferry: ") and "nowhere" in completed.stderr


def test_unknown_agent_names_the_known_ones() -> None:
    completed = _ferry("run", "nope", "--sim")
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("ferry: no agent 'nope' in ")
    assert "invoice-pipeline" in completed.stderr and "Traceback" not in completed.stderr


def test_input_that_is_not_json_is_a_user_error() -> None:
    completed = _ferry("run", "resilient-agent", "--input", "{not json", "--sim")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "ferry: --input is not valid JSON (Expecting property name enclosed in double quotes); use @file for a file"
    ]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("the project is wrong"), 2),
        (BadInputError("the input is wrong"), 2),
        (ServiceUnreachableError("Kafka", "127.0.0.1:1", "start it"), 2),
        (InternalError("Ferry broke"), 1),
        (ExceptionGroup("tasks", [ValueError("x"), ConfigError("inside a task group")]), 2),
    ],
)
def test_each_ferry_error_is_one_line_with_its_code(error: BaseException, code: int) -> None:
    lines: list[str] = []

    class Capture:
        def write(self, text: str) -> None:
            lines.append(text)

    assert exit_code_for(error, Capture()) == code  # type: ignore[arg-type]
    text = "".join(lines)
    assert text.count("\n") == 1 and text.startswith("ferry: ") and "Traceback" not in text


def _failing_handler(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(args: object) -> int:
        raise exc

    monkeypatch.setattr(app.cli.lint, "run", handler)


def test_an_escaping_config_error_prints_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _failing_handler(ConfigError("cannot reach the broker at 127.0.0.1:1 — fix: start it"), monkeypatch)
    assert main(["lint"]) == 2
    assert capsys.readouterr().err == "ferry: cannot reach the broker at 127.0.0.1:1 — fix: start it\n"


def test_an_unexpected_error_is_one_line_with_the_debug_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FERRY_DEBUG", raising=False)
    _failing_handler(KeyError("boom"), monkeypatch)
    assert main(["lint"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "ferry: unexpected error: KeyError: 'boom' (a bug in Ferry? rerun with FERRY_DEBUG=1 to see the traceback)"
    ]


def test_ferry_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FERRY_DEBUG", "1")
    _failing_handler(KeyError("boom"), monkeypatch)
    assert main(["lint"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'boom'" in err
    assert err.splitlines()[-1] == "ferry: unexpected error: KeyError: 'boom'"


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(app.cli, "lingering_threads", list)  # never os._exit the test session
    _failing_handler(KeyboardInterrupt(), monkeypatch)
    assert main(["lint"]) == 130
    assert capsys.readouterr().err == "ferry: interrupted\n"


def test_ctrl_c_does_not_wait_for_a_stuck_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(app.cli, "lingering_threads", lambda: [threading.current_thread()])
    monkeypatch.setattr(app.cli, "exit_now", exits.append)
    _failing_handler(KeyboardInterrupt(), monkeypatch)
    main(["lint"])
    assert exits == [130]  # os._exit: the interpreter would otherwise join the thread first
