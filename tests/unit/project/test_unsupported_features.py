"""Connic features Ferry does not run yet load, each with a warning saying what will not happen."""

from __future__ import annotations

import pytest

from app.cli import main
from app.project import lint_project, load_project

from .conftest import HEADER, ProjectFactory

A = "agents/a.yaml"


def test_guardrail_modules_are_warned_about_and_middleware_hooks_load(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            A: HEADER,
            "middleware/orders.py": "def before(content, context):\n    return content\n\n\n"
            "async def after(response, context):\n    return response\n",
            "middleware/a.py": "def cleanup(run, context):\n    pass\n",
            "middleware/_shared.py": "def before(content, context):\n    return content\n",
            "middleware/__init__.py": "",
            "middleware/.draft.py": "def before(content, context):\n    return content\n",
            "hooks/a.py": "def before(tool_name, params, context):\n    return params\n",
            "guardrails/pii.py": "def check(content, context):\n    return None\n",
        }
    )
    project = load_project(root)  # a warning never stops a load
    assert [str(w) for w in project.warnings] == [
        "guardrails/pii.py: no custom guardrail rule names 'pii': never run",
        "middleware/orders.py: no agent named 'orders': this file is never run",
    ]
    assert "middleware/orders.py" in project.file_hashes  # it changes what the project would do
    assert project.middleware["a"].cleanup is not None and project.middleware["a"].before is None
    assert project.tool_hooks["a"].before is not None


def test_a_middleware_module_that_fails_is_an_error_at_its_line(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            A: HEADER,
            "middleware/a.py": "def before(:\n",
            "hooks/a.py": "X = 1\nraise RuntimeError('no config')\n",
        }
    )
    problems = [str(p) for p in lint_project(root).problems if p.loc.file.startswith(("hooks/", "middleware/"))]
    assert problems == [
        "hooks/a.py:2:1: importing hooks/a.py raised RuntimeError: no config",
        "middleware/a.py:1:12: importing middleware/a.py raised SyntaxError: invalid syntax",
    ]


UNSUPPORTED_KEYS = [
    ("voice_config: {provider: openai}\n", "voice_config: voice is not supported by Ferry yet — the agent runs as a text agent"),
    ("retry_options:\n  rerun_middleware: true\n", "retry_options.rerun_middleware: Ferry runs middleware once per run, not again on a retry — ignored"),
]  # fmt: skip


@pytest.mark.parametrize(("yaml", "expected"), UNSUPPORTED_KEYS, ids=[k.split(":")[0] for k, _ in UNSUPPORTED_KEYS])
def test_a_connic_key_ferry_does_not_support_is_a_warning_at_its_line(
    make_project: ProjectFactory, yaml: str, expected: str
) -> None:
    project = load_project(make_project({A: HEADER + yaml}))
    line = 7 if expected.startswith("retry_options.") else 6
    column = 3 if line == 7 else 1
    assert [str(w) for w in project.warnings] == [f"{A}:{line}:{column} {expected}"]


def test_a_session_on_an_llm_agent_loads_and_elsewhere_is_not_used(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            A: HEADER + "session: true\n",
            "agents/s.yaml": 'version: "1.0"\nname: s\ndescription: x\ntype: sequential\nagents: [a]\n'
            "session: {key: context.chat_id}\n",
            "agents/b.yaml": HEADER.replace("name: a", "name: b") + "session: {key: chat_id}\n",
        }
    )
    problems = [str(p) for p in lint_project(root).problems if p.loc.file.startswith("agents/")]
    assert problems == [
        "agents/b.yaml:6:16 session.key: must be context.<path> or input.<path> (e.g. context.chat_id), got 'chat_id'",
        "agents/s.yaml:6:1 session: is not used by sequential agents; ignored",
    ]


def test_a_connic_key_on_any_agent_type_is_the_same_warning(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            A: HEADER,
            "agents/s.yaml": 'version: "1.0"\nname: s\ndescription: x\ntype: sequential\nagents: [a]\n'
            "voice_config: {voice: alloy}\n",
            "agents/t.yaml": 'version: "1.0"\nname: t\ndescription: x\ntype: tool\ntool_name: good.store\n'
            "guardrails: {output: []}\n",
        }
    )
    assert [str(w) for w in load_project(root).warnings] == [
        "agents/s.yaml:6:1 voice_config: voice is not supported by Ferry yet — the agent runs as a text agent",
    ]


def test_connic_predefined_tools_resolve_and_api_tools_are_warnings(make_project: ProjectFactory) -> None:
    root = make_project(
        {A: HEADER + "tools:\n  - web_search\n  - db_*\n  - api:crm.lookup\n  - good.f\n  - web_browser_open\n"}
    )
    project = load_project(root)
    assert [t.ref for t in project.tools_for("a")] == [
        "web_search",
        "db_count",
        "db_delete",
        "db_find",
        "db_insert",
        "db_list_collections",
        "db_update",
        "db_upsert",
        "good.f",
    ]
    assert [str(w) for w in project.warnings] == [
        f"{A}:9:5 tools[2]: API-spec tools are not supported by Ferry yet — api:crm.lookup will not be offered "
        "to the LLM",
        f"{A}:11:5 tools[4]: browser tools (web_browser_*) need a hosted browser Ferry does not run — "
        "web_browser_open will not be offered to the LLM",
    ]


def test_lint_prints_each_unsupported_feature_with_its_warning_tag_and_exits_0(
    make_project: ProjectFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project(
        {
            A: HEADER + "tools: [good.f, good.g]\nvoice_config: {voice: alloy}\n",
            "guardrails/a.py": "def check(content, context):\n    return None\n",
        }
    )
    assert main(["lint", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "guardrails/a.py: no custom guardrail rule names 'a': never run [warning]" in out
    assert (
        f"{A}:7:1 voice_config: voice is not supported by Ferry yet — the agent runs as a text agent [warning]"
    ) in out
    assert lint_project(root).errors == []


def test_guardrail_rules_are_checked_and_judged_kinds_need_a_model(make_project: ProjectFactory) -> None:
    tool_agent = 'version: "1.0"\nname: t\ndescription: x\ntype: tool\ntool_name: good.store\n'
    root = make_project(
        {
            A: HEADER + "guardrails:\n  input:\n    - type: prompt_injection\n    - type: custom\n      name: gone\n",
            "agents/t.yaml": tool_agent + "guardrails:\n  input:\n    - type: moderation\n",
        }
    )
    assert [str(p) for p in lint_project(root).problems if p.loc.file.startswith("agents/")] == [
        f"{A}:9:7 guardrails.input[1]: no custom guardrail guardrails/gone.py",
        "agents/t.yaml:8:7 guardrails.input[0]: a judged guardrail (moderation) needs a judge model: set "
        "config.model (the agent has no model of its own) — this rule checks nothing",
    ]
    wrong = make_project(
        {
            A: HEADER + "guardrails:\n  output:\n    - type: pii\n      mode: redact\n"
            "      config: {entities: [email, dna]}\n    - type: regex\n      mode: redact\n"
            "      config: {patterns: ['x']}\n",
        }
    )
    assert [str(p) for p in lint_project(wrong).problems if p.loc.file == A] == [
        f"{A}:8:7 guardrails.output[0]: unknown PII entity 'dna' (known: email, credit_card, iban, ssn, "
        "ip_address, phone)",
        f"{A}:11:7 guardrails.output[1]: mode redact is only for pii and pii_leakage guardrails, not regex",
    ]
