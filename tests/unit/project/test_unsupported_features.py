"""Connic features Ferry does not run yet load, each with a warning saying what will not happen."""

from __future__ import annotations

import pytest

from app.cli import main
from app.project import lint_project, load_project

from .conftest import HEADER, ProjectFactory

A = "agents/a.yaml"


def test_middleware_hooks_and_guardrail_modules_are_warned_about_by_file(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            A: HEADER,
            "middleware/orders.py": "def before(content, context):\n    return content\n\n\n"
            "async def after(response, context):\n    return response\n",
            "middleware/a.py": "def cleanup(run, context):\n    pass\n",
            "middleware/notes.py": "# nothing Connic would call\nX = 1\n",
            "middleware/broken.py": "def before(:\n",
            "middleware/_shared.py": "def before(content, context):\n    return content\n",
            "middleware/__init__.py": "",
            "middleware/.draft.py": "def before(content, context):\n    return content\n",
            "hooks/a.py": "def before(tool_name, params, context):\n    return params\n",
            "guardrails/pii.py": "def check(content, context):\n    return None\n",
        }
    )
    project = load_project(root)  # a warning never stops a load
    assert [str(w) for w in project.warnings] == [
        "guardrails/pii.py: custom guardrails are not run by Ferry yet — its check function will be skipped",
        "hooks/a.py: tool hooks are not run by Ferry yet — its before hook will be skipped around tool calls",
        "middleware/a.py: middleware is not run by Ferry yet — its cleanup hook will be skipped",
        "middleware/broken.py: middleware is not run by Ferry yet — the file is ignored",
        "middleware/notes.py: middleware is not run by Ferry yet — the file is ignored",
        "middleware/orders.py: middleware is not run by Ferry yet — its before/after hooks will be skipped",
    ]
    assert "middleware/orders.py" in project.file_hashes  # it changes what the project would do


UNSUPPORTED_KEYS = [
    ("guardrails:\n  input: []\n", "guardrails: guardrails are not enforced by Ferry yet — input and output will not be checked"),
    ("session:\n  key: context.chat_id\n", "session: sessions are not supported by Ferry yet — every run starts without the history of earlier runs"),
    ("mcp_servers:\n  - name: crm\n", "mcp_servers: MCP servers are not connected by Ferry yet — their tools will not be offered to the LLM"),
    ("context_compression:\n  enabled: true\n", "context_compression: context compression is not supported by Ferry yet — a run that outgrows the model's context window fails instead"),
    ("approval:\n  tools: [good.f]\n", "approval: human approval is not supported by Ferry yet — the listed tools will run without waiting for anyone's approval"),
    ("knowledge:\n  namespaces: {}\n", "knowledge: Ferry has no predefined retrieval tools yet — these access rules apply to nothing"),
    ("reasoning_effort: high\n", "reasoning_effort: reasoning settings are not passed to the model by Ferry yet — the provider's default applies"),
    ("retry_options:\n  rerun_middleware: true\n", "retry_options.rerun_middleware: middleware is not run by Ferry yet, so there is nothing to re-run — ignored"),
]  # fmt: skip


@pytest.mark.parametrize(("yaml", "expected"), UNSUPPORTED_KEYS, ids=[k.split(":")[0] for k, _ in UNSUPPORTED_KEYS])
def test_a_connic_key_ferry_does_not_support_is_a_warning_at_its_line(
    make_project: ProjectFactory, yaml: str, expected: str
) -> None:
    project = load_project(make_project({A: HEADER + yaml}))
    line = 7 if expected.startswith("retry_options.") else 6
    column = 3 if line == 7 else 1
    assert [str(w) for w in project.warnings] == [f"{A}:{line}:{column} {expected}"]


def test_a_connic_key_on_any_agent_type_is_the_same_warning(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            A: HEADER,
            "agents/s.yaml": 'version: "1.0"\nname: s\ndescription: x\ntype: sequential\nagents: [a]\nsession: true\n',
            "agents/t.yaml": 'version: "1.0"\nname: t\ndescription: x\ntype: tool\ntool_name: good.store\n'
            "guardrails: {output: []}\n",
        }
    )
    assert [str(w) for w in load_project(root).warnings] == [
        "agents/s.yaml:6:1 session: sessions are not supported by Ferry yet — every run starts without the history "
        "of earlier runs",
        "agents/t.yaml:6:1 guardrails: guardrails are not enforced by Ferry yet — input and output will not be checked",
    ]


def test_connic_predefined_and_api_tools_are_warnings_and_the_rest_still_resolve(make_project: ProjectFactory) -> None:
    root = make_project({A: HEADER + "tools:\n  - web_search\n  - db_*\n  - api:crm.lookup\n  - good.f\n"})
    project = load_project(root)
    assert [t.ref for t in project.tools_for("a")] == ["good.f"]
    assert [str(w) for w in project.warnings] == [
        f"{A}:7:5 tools[0]: Connic's predefined tool web_search is not available in Ferry yet — it will not be "
        "offered to the LLM",
        f"{A}:8:5 tools[1]: Connic's predefined tool db_* is not available in Ferry yet — it will not be offered "
        "to the LLM",
        f"{A}:9:5 tools[2]: API-spec tools are not supported by Ferry yet — api:crm.lookup will not be offered "
        "to the LLM",
    ]


def test_lint_prints_each_unsupported_feature_with_its_warning_tag_and_exits_0(
    make_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(
        {
            A: HEADER + "tools: [good.f, good.g]\nsession: true\n",
            "middleware/a.py": "def before(content, context):\n    return content\n",
        }
    )
    assert main(["lint", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "middleware/a.py: middleware is not run by Ferry yet — its before hook will be skipped [warning]" in out
    assert (
        f"{A}:7:1 session: sessions are not supported by Ferry yet — every run starts without the history of "
        "earlier runs [warning]"
    ) in out
    assert lint_project(root).errors == []
