"""Tool modules: imported per project without sys.path, never escaping tools/, failures reported."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from app.project import ProjectError, lint_project, load_project

from .conftest import HEADER, ProjectFactory, write_project


def _project(root: Path, body: str, tools: str = "documents.parse") -> Path:
    return write_project(
        root,
        {
            "agents/a.yaml": HEADER + f"tools: [{tools}]\n",
            "tools/documents.py": body,
        },
    )


def test_two_projects_with_the_same_module_name_do_not_clash(tmp_path: Path) -> None:
    path_before, modules_before = list(sys.path), set(sys.modules)
    first = load_project(_project(tmp_path / "one", "def parse(name: str):\n    return 'one'\n"))
    second = load_project(_project(tmp_path / "two", "def parse(name: str):\n    return 'two'\n"))
    assert first.tools_for("a")[0].func(name="x") == "one"
    assert second.tools_for("a")[0].func(name="x") == "two"
    assert sys.path == path_before
    new_modules = set(sys.modules) - modules_before
    assert "tools" not in new_modules and "documents" not in new_modules
    assert all(name.startswith("_ferry_tools_") for name in new_modules)


def test_a_changed_tool_file_is_reimported_on_the_next_load(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "def parse(name: str):\n    return 'v1'\n")
    assert load_project(root).tools_for("a")[0].func(name="x") == "v1"
    (root / "tools/documents.py").write_text("def parse(name: str):\n    return 'v2'\n")
    assert load_project(root).tools_for("a")[0].func(name="x") == "v2"


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        (
            "import not_a_real_package_xyz\n",
            "1:1",
            "raised ModuleNotFoundError: No module named 'not_a_real_package_xyz'",
        ),
        ("raise SystemExit(3)\n", "1:1", "raised SystemExit: 3"),
        ("def parse(:\n", "1:11", "raised SyntaxError: invalid syntax"),
        (
            "X = 1\n\n\ndef helper():\n    return 1 / 0\n\n\nhelper()\n",
            "5:1",
            "raised ZeroDivisionError: division by zero",
        ),
    ],
)
def test_a_module_failing_on_import_is_an_error_at_the_line_that_raised(
    tmp_path: Path, body: str, where: str, message: str
) -> None:
    root = _project(tmp_path / "p", body)
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    assert [str(p) for p in caught.value.errors] == [
        f"tools/documents.py:{where}: importing tools/documents.py {message} "
        "— used by agents/a.yaml:6:9 tools[0] (documents.parse)"
    ]


def test_a_failing_module_is_reported_once_with_every_ref_that_used_it(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        {
            "agents/a.yaml": HEADER + "tools: [documents.parse, documents.split, documents.*]\n",
            "agents/b.yaml": HEADER.replace("name: a", "name: b") + "tools:\n  - documents.parse\n",
            "agents/c.yaml": 'version: "1.0"\nname: c\ndescription: x\ntype: tool\ntool_name: documents.store\n',
            "tools/_shared.py": "import json\n\nSETTINGS = json.loads('{broken')\n",
            "tools/documents.py": "from ._shared import SETTINGS\n\n\ndef parse(name: str):\n    return name\n",
        },
    )
    report = lint_project(root)
    assert [str(p) for p in report.errors] == [
        "tools/_shared.py:3:1: importing tools/documents.py raised JSONDecodeError: Expecting property name "
        "enclosed in double quotes: line 1 column 2 (char 1) — used by agents/a.yaml:6:9 tools[0] (documents.parse), "
        "agents/a.yaml:6:26 tools[1] (documents.split), agents/a.yaml:6:43 tools[2] (documents.*), "
        "agents/b.yaml:7:5 tools[0] (documents.parse), agents/c.yaml:5:12 tool_name (documents.store)"
    ]


def test_nested_modules_relative_imports_and_async_tools(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        {
            "agents/a.yaml": HEADER + "tools: [billing.invoices.total, billing.invoices.fetch]\n",
            "tools/billing/_shared.py": "RATE = 2\n",
            "tools/billing/invoices.py": (
                "from ._shared import RATE\n\n\ndef total(amount: float) -> float:\n    return amount * RATE\n\n\n"
                "async def fetch(id: str) -> str:\n    return id\n"
            ),
        },
    )
    total, fetch = load_project(root).tools_for("a")
    assert (total.ref, total.func(amount=2.0), total.is_async) == ("billing.invoices.total", 4.0, False)
    assert fetch.is_async and asyncio.run(fetch.func(id="x")) == "x"


def test_a_tool_symlinked_from_outside_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def parse(name: str):\n    return name\n")
    root = write_project(tmp_path / "p", {"agents/a.yaml": HEADER + "tools: [evil.parse]\n"})
    (root / "tools").mkdir()
    (root / "tools/evil.py").symlink_to(outside)
    errors = [str(p) for p in lint_project(root).errors]
    assert "agents/a.yaml:6:9 tools[0]: tools/evil.py resolves outside the project's tools/ folder" in errors


def test_project_files_symlinked_from_outside_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "object"}')
    root = write_project(tmp_path / "p", {"agents/a.yaml": HEADER + "output_schema: leak\n"})
    (root / "schemas").mkdir()
    (root / "schemas/leak.json").symlink_to(secret)
    errors = [str(p) for p in lint_project(root).errors]
    assert "schemas/leak.json:1:1: resolves outside the project directory (symlink?); not read" in errors


def test_a_tool_agent_gets_its_function(make_project: ProjectFactory) -> None:
    root = make_project(
        {"agents/s.yaml": 'version: "1.0"\nname: s\ndescription: x\ntype: tool\ntool_name: good.store\n'}
    )
    (tool,) = load_project(root).tools_for("s")
    assert (tool.name, tool.takes_context, tool.func(payload={"a": 1})) == ("store", True, {"a": 1})
