"""One load reports every mistake of a project, across files, not just the first."""

from __future__ import annotations

import pytest

from app.project import ProjectError, lint_project, load_project

from .conftest import HEADER, ProjectFactory


def test_every_mistake_of_a_project_is_reported_at_once(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "agents/a.yaml": HEADER
            + "temperature: 5\ntools:\n  - nomod.f\n  - good.f: bad name\noutput_schema: nope\n",
            "agents/b.yaml": 'version: "1.0"\nname: b\ndescription: x\ntype: sequential\nagents: [ghost]\n',
            "agents/c.yaml": 'version: "1.0"\nname: a\ndescription: x\ntype: tool\ntool_name: boom.run\n',
            "agents/d.yaml": "name: [unclosed\n",
            "schemas/s.json": '{"type": "string"}',
            "ferry.yaml": "models:\n  m: {tokens_per_minute: 0}\n",
        }
    )
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    reported = {str(p).split(": ", 1)[0] for p in caught.value.errors}
    assert reported == {
        "agents/a.yaml:6:14 temperature",
        "agents/a.yaml:8:5 tools[0]",
        "agents/a.yaml:9:13 tools[1]",
        "agents/a.yaml:10:16 output_schema",
        "agents/b.yaml:5:10 agents[0]",
        "agents/c.yaml:2:7 name",
        "agents/d.yaml:2:1",
        "schemas/s.json:1:10 type",
        "ferry.yaml:2:26 models.m.tokens_per_minute",
        "tools/boom.py:1:1",  # the tool agent's module raised on import: reported where it raised
    }
    assert (
        "tools/boom.py:1:1: importing tools/boom.py raised RuntimeError: kaboom: missing API key "
        "— used by agents/c.yaml:5:12 tool_name (boom.run)"
    ) in str(caught.value).splitlines()
    assert "10 error(s) in project" in str(caught.value)


def test_an_inherited_mistake_is_reported_once_at_the_defaults_file(make_project: ProjectFactory) -> None:
    files = {f"agents/a{i}.yaml": HEADER.replace("name: a", f"name: a{i}") for i in range(5)}
    root = make_project({**files, "agents/_defaults.yaml": "temperature: 9\n"})
    report = lint_project(root)
    assert [str(p) for p in report.errors] == [
        "agents/_defaults.yaml:1:14 temperature: must be between 0 and 2 (got 9)"
    ]


def test_unknown_keys_are_never_dropped_silently(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "agents/a.yaml": HEADER
            + "guardrails: {input: []}\nretry_options:\n  rerun_middleware: true\nnotes: mine\n",
            "agents/b.yaml": 'version: "1.0"\nname: b\ndescription: x\ntype: sequential\nagents: [a]\ntemperature: 1\n',
            "agents/_defaults.yaml": "voice_config: {voice: alloy}\n",
        }
    )
    project = load_project(root)
    assert [str(w) for w in project.warnings] == [
        "agents/_defaults.yaml:1:1 voice_config: voice is not supported by Ferry yet — the agent runs as a text agent",
        "agents/a.yaml:8:3 retry_options.rerun_middleware: Ferry runs middleware once per run, not again on a retry "
        "— ignored",
        "agents/a.yaml:9:1 notes: unknown key; Ferry ignores it",
        "agents/b.yaml:6:1 temperature: is not used by sequential agents; ignored",
    ]


def test_a_function_listed_twice_is_kept_once_with_a_warning(make_project: ProjectFactory) -> None:
    root = make_project({"agents/a.yaml": HEADER + "tools: [good.f, good.g, good.f]\n"})
    project = load_project(root)
    assert [t.name for t in project.tools_for("a")] == ["f", "g"]
    assert [str(w) for w in project.warnings] == ["agents/a.yaml:6:25 tools[2]: good.f is listed twice"]


def test_hidden_files_are_skipped_and_yml_agents_are_flagged(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "agents/a.yaml": HEADER,
            "agents/.drafts/b.yaml": "not: [valid\n",
            "agents/.c.yaml": "not: [valid\n",
            "agents/d.yml": HEADER.replace("name: a", "name: d"),
        }
    )
    project = load_project(root)
    assert list(project.agents) == ["a"]
    assert [str(w) for w in project.warnings] == ["agents/d.yml:1:1: ignored: agent files must end in .yaml"]


def test_a_path_that_is_not_a_project_is_its_own_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.project import ProjectNotFoundError

    with pytest.raises(ProjectNotFoundError, match="not a Ferry project: no agents/ folder"):
        load_project(tmp_path)
    report = lint_project(tmp_path / "nope")
    assert not report.readable and not report.ok
    assert [str(p) for p in report.problems] == [f"{tmp_path / 'nope'}: no such directory"]


def test_the_public_surface() -> None:
    import app.project

    for name in (
        "load_project",
        "lint_project",
        "select_tools",
        "Project",
        "ProjectError",
        "ToolDef",
        "AgentSpec",
        "LLMAgentSpec",
        "SequentialAgentSpec",
        "ToolAgentSpec",
        "RetryOptions",
        "ConcurrencySpec",
        "BudgetSpec",
        "ProjectConfig",
        "ModelOverrides",
        "LintReport",
        "Problem",
    ):
        assert name in app.project.__all__ and hasattr(app.project, name)


def test_an_alias_bomb_is_read_in_linear_time(make_project: ProjectFactory) -> None:
    lines = ['x0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    root = make_project({"agents/a.yaml": HEADER + "\n".join(lines) + "\nsystem_prompt: *a11\n"})
    report = lint_project(root)  # 9**12 leaves if expanded; must return at once
    assert [str(p) for p in report.errors] == [
        "agents/a.yaml:17:6 system_prompt: must be a string (got a list)",  # where the aliased value is written
        "agents/a.yaml:18:1 system_prompt: duplicate key 'system_prompt'; only the last one would count",
    ]
