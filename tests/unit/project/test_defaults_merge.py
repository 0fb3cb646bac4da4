"""`_defaults.yaml` cascade: scalars override, maps merge per key, tools concatenate with replacement."""

from __future__ import annotations

from app.project import LLMAgentSpec, load_project
from app.project.merge import merge_values
from app.project.yamlmarks import load_yaml

from .conftest import HEADER, ProjectFactory


def _merge(*texts: str) -> object:
    data: object = {}
    shadow = load_yaml("{}", "x").shadow
    for index, text in enumerate(texts):
        layer = load_yaml(text, f"f{index}.yaml")
        data, shadow = merge_values(data, shadow, layer.data, layer.shadow)
    return data


def test_scalars_override_and_maps_merge_per_key() -> None:
    merged = _merge(
        "temperature: 0.5\nretry_options: {attempts: 5, max_delay: 60}\n",
        "temperature: 0.1\nretry_options: {attempts: 2}\n",
    )
    assert merged == {"temperature": 0.1, "retry_options": {"attempts": 2, "max_delay": 60}}


def test_tools_concatenate_and_a_redeclared_entry_replaces_the_one_above() -> None:
    merged = _merge("tools: [a.x, a.y]\n", "tools: [{a.x: input.vip}, b.z]\n")
    assert merged == {"tools": ["a.y", {"a.x": "input.vip"}, "b.z"]}


def test_other_lists_are_replaced_and_agents_lists_deduplicated() -> None:
    assert _merge("agents: [p, q]\n", "agents: [q, r]\n") == {"agents": ["p", "q", "r"]}
    assert _merge("x: [1, 2]\n", "x: [3]\n") == {"x": [3]}


def test_cascade_from_the_root_down_to_the_agent_folder(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "agents/_defaults.yaml": "temperature: 0.3\ntimeout: 30\nretry_options: {attempts: 5, max_delay: 60}\ntools: [good.f]\n",
            "agents/team/_defaults.yaml": "timeout: 90\nretry_options: {attempts: 2}\ntools: [{good.f: input.vip == true}]\n",
            "agents/team/a.yaml": HEADER + "tools: [good.g]\n",
            "agents/b.yaml": HEADER.replace("name: a", "name: b") + "temperature: 1.5\n",
        }
    )
    project = load_project(root)
    a, b = project.agents["a"], project.agents["b"]
    assert isinstance(a, LLMAgentSpec) and isinstance(b, LLMAgentSpec)
    assert (a.temperature, a.timeout, a.retry_options.attempts, a.retry_options.max_delay) == (0.3, 90, 2, 60)
    # good.f comes from the root, redeclared with a condition by team/; the agent adds good.g.
    assert [(t.ref, t.condition) for t in a.tools] == [("good.f", "input.vip == true"), ("good.g", None)]
    assert [(t.name, t.condition) for t in a.resolved_tools] == [("f", "input.vip == true"), ("g", None)]
    assert (b.temperature, b.timeout, b.retry_options.attempts) == (1.5, 30, 5)
    assert [t.ref for t in b.tools] == ["good.f"]


def test_a_merged_value_is_reported_at_the_file_it_came_from(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            "agents/_defaults.yaml": "tools:\n  - nomod.f\n",
            "agents/a.yaml": HEADER + "tools:\n  - good.f\n  - missing.g\n",
        }
    )
    from app.project import lint_project

    errors = [str(p) for p in lint_project(root).errors]
    assert errors == [
        "agents/_defaults.yaml:2:5 tools[0]: no tool module tools/nomod.py",
        "agents/a.yaml:8:5 tools[1]: no tool module tools/missing.py",  # index as written
    ]
