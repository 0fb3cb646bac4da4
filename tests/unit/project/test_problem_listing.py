"""Every listing of a project's problems tags warnings the same way, via one formatter."""

from __future__ import annotations

import pytest

from app.cli import main
from app.project import Loc, Problem, ProjectError, format_problem, format_problems, load_project

from .conftest import HEADER, ProjectFactory

BROKEN = {
    "agents/a.yaml": HEADER + "temprature: 0\n",
    "middleware/nobody.py": "def before(content, context):\n    return content\n",
}
ERROR_LINE = "agents/a.yaml:6:1 temprature: unknown key `temprature` — did you mean `temperature`?"
WARNING_LINE = "middleware/nobody.py: no agent named 'nobody': this file is never run [warning]"


def test_a_warning_is_tagged_and_an_error_is_not() -> None:
    error = Problem("error", "must be at least 5 (got 1)", Loc("agents/a.yaml", 6, 10), "timeout")
    warning = Problem("warning", "schema 'x' is not used by any agent", Loc("schemas/x.json"))
    assert format_problem(error) == "agents/a.yaml:6:10 timeout: must be at least 5 (got 1)"
    assert format_problem(warning) == "schemas/x.json:1:1: schema 'x' is not used by any agent [warning]"
    assert format_problems([error, warning]) == f"{format_problem(error)}\n{format_problem(warning)}"


def test_project_error_lists_errors_and_tagged_warnings(make_project: ProjectFactory) -> None:
    with pytest.raises(ProjectError) as caught:
        load_project(make_project(BROKEN))
    assert str(caught.value) == f"1 error(s) and 1 warning(s) in project:\n{ERROR_LINE}\n{WARNING_LINE}"


@pytest.mark.parametrize("command", [["run", "a", "--sim"], ["topics", "plan"], ["worker", "--broker", "127.0.0.1:1"]])
def test_every_command_lists_the_problems_with_their_tags(
    make_project: ProjectFactory, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    root = make_project(BROKEN)
    assert main([*command, "--project", str(root)]) == 2
    err = capsys.readouterr().err
    assert "1 error(s) and 1 warning(s) in project:" in err
    assert err.splitlines()[-2:] == [ERROR_LINE, WARNING_LINE]
