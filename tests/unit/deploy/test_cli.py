"""`ferry deploy`, `activate`, `rollback` refuse what they cannot do in one line, exit 2, before any broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main


def _project(root: Path) -> Path:
    (root / "agents").mkdir(parents=True)
    (root / "agents" / "echo.yaml").write_text(
        "version: '1.0'\nname: echo\ndescription: d\nmodel: openai/sim\nsystem_prompt: hi\n"
    )
    return root


def test_deploying_a_folder_outside_git_asks_for_allow_dirty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["deploy", "--project", str(_project(tmp_path)), "--broker", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "not inside a git repository" in err[0] and "--allow-dirty" in err[0]


def test_a_ref_and_allow_dirty_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["deploy", "--project", str(_project(tmp_path)), "--allow-dirty", "--ref", "HEAD"])
    assert code == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_failing_lint_is_exit_1_before_the_broker_is_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    (root / "agents" / "echo.yaml").write_text("version: '1.0'\nname: echo\nmodel: [unclosed\n")
    monkeypatch.setenv("FERRY_BROKER", "127.0.0.1:1")  # nothing listens: the gate must stop first
    code = main(["deploy", "--project", str(root), "--allow-dirty"])
    err = capsys.readouterr().err
    assert code == 1
    assert "lint: FAILED" in err and "agents/echo.yaml:" in err and "the active deployment is unchanged" in err


@pytest.mark.parametrize("percent", ["0", "100", "ten"])
def test_a_canary_percentage_is_more_than_0_and_less_than_100(percent: str) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["activate", "v123", "--canary", percent])
    assert exit.value.code == 2
