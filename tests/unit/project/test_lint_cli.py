"""`ferry lint`: what a user sees, and the exit code CI relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.project import lint_project

from .conftest import HEADER, ProjectFactory

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_the_example_project_lints_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(REPO_ROOT)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("0 error(s), 0 warning(s); 5 agent(s) OK"), out


def test_the_example_project_has_the_documented_agents() -> None:
    project = lint_project(REPO_ROOT).project
    assert project is not None
    assert set(project.agents) >= {
        "resilient-agent",
        "invoice-extractor",
        "invoice-validator",
        "invoice-storer",
        "invoice-pipeline",
    }
    pipeline = project.agents["invoice-pipeline"]
    assert pipeline.agents == ("invoice-extractor", "invoice-validator", "invoice-storer")
    assert [t.ref for t in project.tools_for("invoice-extractor")] == [
        "documents.parse_pdf",
        "documents.extract_text_from_image",
        "scoring.score_invoice",
    ]
    assert project.output_schema_for("invoice-extractor")["required"][:2] == ["vendor", "invoice_number"]


def test_errors_exit_1_and_print_file_line_column(
    make_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project({"agents/a.yaml": HEADER + "retry_options:\n  attempts: 20\n"})
    assert main(["lint", str(root)]) == 1
    out = capsys.readouterr().out
    assert "agents/a.yaml:7:13 retry_options.attempts: must be between 1 and 10 (got 20)\n" in out
    assert "1 error(s)" in out


@pytest.mark.parametrize("relative", ["missing-dir", "file.txt", "no-agents"])
def test_a_path_that_is_not_a_project_exits_2(
    tmp_path: Path, relative: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "no-agents").mkdir()
    assert main(["lint", str(tmp_path / relative)]) == 2
    assert capsys.readouterr().out.strip()


def test_warnings_for_unknown_keys_unused_schemas_and_unreferenced_tools(
    make_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(
        {
            "agents/a.yaml": HEADER + "tools: [good.f, good.g]\nvoice_config: {voice: alloy}\n",
            "schemas/orphan.json": '{"type": "object"}',
        }
    )
    assert main(["lint", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        "agents/a.yaml:7:1 voice_config: voice is not supported by Ferry yet — the agent runs as a text agent [warning]"
    ) in out
    assert "schemas/orphan.json:1:1: schema 'orphan' is not used by any agent [warning]" in out
    assert "tools/other.py:1:1: tool other.f is not referenced by any agent [warning]" in out
    assert "tools/good.py:15:1: tool good.varargs is not referenced by any agent [warning]" in out
    assert (
        "tools/boom.py:1:1: no agent references this module, and importing tools/boom.py raised RuntimeError: "
        "kaboom: missing API key [warning]" in out
    )
    assert not any("good.f " in line or "good.g " in line for line in out)


def test_json_output_for_machines(make_project: ProjectFactory, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_project({"agents/a.yaml": HEADER + "timeout: 1\n"})
    assert main(["lint", "--json", str(root)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["readable"], report["errors"]) == (False, True, 1)
    error = next(p for p in report["problems"] if p["severity"] == "error")
    assert error == {
        "severity": "error",
        "file": "agents/a.yaml",
        "line": 6,
        "column": 10,
        "key_path": "timeout",
        "message": "must be at least 5 (got 1)",
    }


def test_lint_defaults_to_the_current_directory(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project({"agents/a.yaml": HEADER + "tools: [good.f, good.g, good.store, other.f]\n"})
    monkeypatch.chdir(root)
    assert main(["lint"]) == 1  # good.f and other.f clash
    assert "tools[3]: tool name 'f' (other.f)" in capsys.readouterr().out
