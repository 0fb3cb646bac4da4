"""A misspelt key is an error naming the key meant; any other unknown key is a warning."""

from __future__ import annotations

import pytest

from app.project import ProjectError, lint_project, load_project

from .conftest import HEADER, ProjectFactory

A = "agents/a.yaml"
SEQUENTIAL = 'version: "1.0"\nname: s\ndescription: chain\ntype: sequential\nagents: [a]\n'
TOOL_AGENT = 'version: "1.0"\nname: t\ndescription: tool\ntype: tool\ntool_name: good.store\n'

MISSPELT = [
    pytest.param(
        {A: HEADER + "temprature: 0.2\n"},
        f"{A}:6:1 temprature: unknown key `temprature` — did you mean `temperature`?",
        id="llm-top-level",
    ),
    pytest.param(
        {A: HEADER + "Temperature: 0.2\n"},
        f"{A}:6:1 Temperature: unknown key `Temperature` — did you mean `temperature`?",
        id="letter-case",
    ),
    pytest.param(
        {A: HEADER + "retry_options:\n  attemps: 2\n"},
        f"{A}:7:3 retry_options.attemps: unknown key `attemps` — did you mean `attempts`?",
        id="retry-options",
    ),
    pytest.param(
        {A: HEADER + "concurrency:\n  key: id\n  on_conflit: drop\n"},
        f"{A}:8:3 concurrency.on_conflit: unknown key `on_conflit` — did you mean `on_conflict`?",
        id="concurrency",
    ),
    pytest.param(
        {A: HEADER + "budget:\n  max_cost: 0.5\n"},
        f"{A}:7:3 budget.max_cost: unknown key `max_cost` — did you mean `max_cost_usd`?",
        id="budget",
    ),
    pytest.param(
        {A: HEADER, "agents/s.yaml": SEQUENTIAL + "timout: 30\n"},
        "agents/s.yaml:6:1 timout: unknown key `timout` — did you mean `timeout`?",
        id="sequential",
    ),
    pytest.param(
        {A: HEADER, "agents/t.yaml": TOOL_AGENT + "tool_timout: 3\n"},
        "agents/t.yaml:6:1 tool_timout: unknown key `tool_timout` — did you mean `tool_timeout`?",
        id="tool-agent",
    ),
    pytest.param(
        {A: HEADER + "sesion: true\n"},
        f"{A}:6:1 sesion: unknown key `sesion` — did you mean `session`?",
        id="connic-key-misspelt",
    ),
    pytest.param(
        {A: HEADER, "agents/_defaults.yaml": "max_iteration: 3\nretry_options:\n  initial_dealy: 1\n"},
        "agents/_defaults.yaml:1:1 max_iteration: unknown key `max_iteration` — did you mean `max_iterations`?",
        id="defaults-top-level",
    ),
    pytest.param(
        {A: HEADER, "agents/_defaults.yaml": "max_iteration: 3\nretry_options:\n  initial_dealy: 1\n"},
        "agents/_defaults.yaml:3:3 retry_options.initial_dealy: unknown key `initial_dealy` "
        "— did you mean `initial_delay`?",
        id="defaults-nested",
    ),
    pytest.param(
        {A: HEADER, "agents/_defaults.yaml": "concurrency:\n  key: id\n  on_confict: drop\n"},
        "agents/_defaults.yaml:3:3 concurrency.on_confict: unknown key `on_confict` — did you mean `on_conflict`?",
        id="defaults-key-of-some-agent-types",
    ),
    pytest.param(
        {A: HEADER, "ferry.yaml": "modles: {}\n"},
        "ferry.yaml:1:1 modles: unknown key `modles` — did you mean `models`?",
        id="ferry-yaml",
    ),
    pytest.param(
        {A: HEADER, "ferry.yaml": "models:\n  openai/gpt-4o-mini:\n    requests_per_minut: 5\n"},
        "ferry.yaml:3:5 models.openai/gpt-4o-mini.requests_per_minut: unknown key `requests_per_minut` "
        "— did you mean `requests_per_minute`?",
        id="ferry-yaml-model",
    ),
    pytest.param(
        {A: HEADER, "topics/core.yaml": "topics:\n  - name: runs.results\n    partition: 3\n"},
        "topics/core.yaml:3:5 topics[0].partition: unknown key `partition` — did you mean `partitions`?",
        id="topic",
    ),
    pytest.param(
        {A: HEADER, "connectors/pg.yaml": "name: pg\nconfg:\n  connector.class: x\n"},
        "connectors/pg.yaml:2:1 confg: unknown key `confg` — did you mean `config`?",
        id="kafka-connect",
    ),
    pytest.param(
        {A: HEADER, "connectors/hook.yaml": "type: webhook\nname: hook\nurl: https://x\nretires: 2\n"},
        "connectors/hook.yaml:4:1 retires: unknown key `retires` — did you mean `retries`?",
        id="webhook",
    ),
]


@pytest.mark.parametrize(("files", "expected"), MISSPELT)
def test_a_misspelt_key_is_an_error_naming_the_key_meant(
    make_project: ProjectFactory, files: dict[str, str], expected: str
) -> None:
    with pytest.raises(ProjectError) as caught:
        load_project(make_project(files))
    assert expected in [str(p) for p in caught.value.errors]


def test_a_key_close_to_no_known_key_is_only_a_warning(make_project: ProjectFactory) -> None:
    root = make_project(
        {
            A: HEADER + "tags: [billing]\nowner: team-a\n",
            "ferry.yaml": "notes: prices from the 2024 contract\n",
            "topics/core.yaml": "topics:\n  - name: runs.results\n    comment: kept short\n",
        }
    )
    project = load_project(root)
    assert [str(w) for w in project.warnings] == [
        f"{A}:6:1 tags: unknown key; Ferry ignores it",
        f"{A}:7:1 owner: unknown key; Ferry ignores it",
        "ferry.yaml:1:1 notes: unknown key; Ferry ignores it",
        "topics/core.yaml:3:5 topics[0].comment: unknown key; Ferry ignores it",
    ]


def test_a_misspelt_key_inherited_from_defaults_is_reported_once_at_the_defaults_file(
    make_project: ProjectFactory,
) -> None:
    files = {f"agents/a{i}.yaml": HEADER.replace("name: a", f"name: a{i}") for i in range(3)}
    root = make_project({**files, "agents/_defaults.yaml": "retry_options:\n  max_dealy: 5\n"})
    assert [str(p) for p in lint_project(root).errors] == [
        "agents/_defaults.yaml:2:3 retry_options.max_dealy: unknown key `max_dealy` — did you mean `max_delay`?"
    ]


def test_the_json_report_marks_a_misspelling_as_an_error(make_project: ProjectFactory) -> None:
    report = lint_project(make_project({A: HEADER + "temprature: 0\n"}))
    assert [p.as_dict() for p in report.errors] == [
        {
            "severity": "error",
            "file": A,
            "line": 6,
            "column": 1,
            "key_path": "temprature",
            "message": "unknown key `temprature` — did you mean `temperature`?",
        }
    ]
