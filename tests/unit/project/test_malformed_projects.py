"""Every kind of project mistake is reported with its message and its file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.project import ProjectError, load_project

from .conftest import HEADER, ProjectFactory

A = "agents/a.yaml"


def agent(extra: str = "", header: str = HEADER) -> dict[str, str]:
    return {A: header + extra}


def seq(extra: str) -> dict[str, str]:
    return {A: 'version: "1.0"\nname: a\ndescription: chain\ntype: sequential\n' + extra}


def tool_agent(extra: str) -> dict[str, str]:
    return {A: 'version: "1.0"\nname: a\ndescription: tool\ntype: tool\n' + extra}


def without(line: str) -> str:
    return HEADER.replace(line + "\n", "")


CASES = [
    # ranges
    pytest.param(
        agent("temperature: 3\n"), f"{A}:6:14 temperature: must be between 0 and 2 (got 3)", id="temperature-high"
    ),
    pytest.param(
        agent("temperature: -0.5\n"), f"{A}:6:14 temperature: must be between 0 and 2 (got -0.5)", id="temperature-low"
    ),
    pytest.param(
        agent("retry_options:\n  attempts: 20\n"),
        f"{A}:7:13 retry_options.attempts: must be between 1 and 10 (got 20)",
        id="attempts-high",
    ),
    pytest.param(
        agent("retry_options:\n  attempts: 0\n"),
        f"{A}:7:13 retry_options.attempts: must be between 1 and 10 (got 0)",
        id="attempts-zero",
    ),
    pytest.param(
        agent("retry_options:\n  initial_delay: 301\n"),
        f"{A}:7:18 retry_options.initial_delay: must be between 0 and 300 (got 301)",
        id="initial-delay",
    ),
    pytest.param(
        agent("retry_options:\n  max_delay: 0\n"),
        f"{A}:7:14 retry_options.max_delay: must be between 1 and 300 (got 0)",
        id="max-delay",
    ),
    pytest.param(
        agent("retry_options: {attempt_timeout: 0}\n"),
        f"{A}:6:34 retry_options.attempt_timeout: must be greater than 0 (got 0)",
        id="attempt-timeout",
    ),
    pytest.param(agent("timeout: 4\n"), f"{A}:6:10 timeout: must be at least 5 (got 4)", id="timeout-min"),
    pytest.param(
        agent("max_iterations: 0\n"), f"{A}:6:17 max_iterations: must be at least 1 (got 0)", id="max-iterations"
    ),
    pytest.param(
        agent("max_concurrent_runs: 0\n"),
        f"{A}:6:22 max_concurrent_runs: must be at least 1 (got 0)",
        id="max-concurrent-runs",
    ),
    pytest.param(
        agent("tool_timeout: 0\n"), f"{A}:6:15 tool_timeout: must be greater than 0 (got 0)", id="tool-timeout"
    ),
    pytest.param(
        agent("budget:\n  max_tokens: 0\n"),
        f"{A}:7:15 budget.max_tokens: must be at least 1 (got 0)",
        id="budget-tokens",
    ),
    pytest.param(
        agent("budget:\n  max_cost_usd: -1\n"),
        f"{A}:7:17 budget.max_cost_usd: must be greater than 0 (got -1)",
        id="budget-cost",
    ),
    # enums and types
    pytest.param(
        agent("isolation: docker\n"),
        f"{A}:6:12 isolation: must be 'inline' or 'process' (got 'docker')",
        id="isolation",
    ),
    pytest.param(
        agent("on_timeout: retry\n"), f"{A}:6:13 on_timeout: must be 'partial' or 'fail' (got 'retry')", id="on-timeout"
    ),
    pytest.param(
        agent("concurrency:\n  key: k\n  on_conflict: replace\n"),
        f"{A}:8:16 concurrency.on_conflict: must be 'queue', 'drop' or 'coalesce' (got 'replace')",
        id="on-conflict",
    ),
    pytest.param(
        agent("concurrency:\n  key: ''\n"), f"{A}:7:8 concurrency.key: must not be empty", id="concurrency-key-empty"
    ),
    pytest.param(
        agent("type: chain\n"), f"{A}:6:7 type: must be 'llm', 'sequential' or 'tool' (got 'chain')", id="type"
    ),
    pytest.param(
        agent(header=HEADER.replace('"1.0"', "1.0")),
        f'{A}:1:10 version: must be "1.0" (a quoted string) (got 1.0)',
        id="version-unquoted",
    ),
    pytest.param(
        agent(header=HEADER.replace('"1.0"', '"2.0"')), f"{A}:1:10 version: must be \"1.0\" (got '2.0')", id="version-2"
    ),
    pytest.param(
        agent(header=HEADER.replace("name: a", "name: Bad_Name")),
        f"{A}:2:7 name: must be lowercase letters, digits and hyphens, starting and ending with a letter "
        "or digit (got 'Bad_Name')",
        id="name-pattern",
    ),
    pytest.param(agent(header=without("model: openai/gpt-4o-mini")), f"{A}:1:1 model: is required", id="model-missing"),
    pytest.param(
        agent(header=without("system_prompt: You help.")), f"{A}:1:1 system_prompt: is required", id="prompt-missing"
    ),
    pytest.param(
        agent(header=without("description: test agent")), f"{A}:1:1 description: is required", id="description-missing"
    ),
    pytest.param(
        agent("temperature: hot\n"), f"{A}:6:14 temperature: must be a number (got 'hot')", id="temperature-type"
    ),
    pytest.param(
        agent("max_iterations: many\n"), f"{A}:6:17 max_iterations: must be an integer (got 'many')", id="int-type"
    ),
    pytest.param(agent("retry_options: 5\n"), f"{A}:6:16 retry_options: must be a map (got 5)", id="map-type"),
    pytest.param(agent("tools: good.f\n"), f"{A}:6:8 tools: must be a list (got 'good.f')", id="tools-not-list"),
    # tool refs
    pytest.param(
        agent("tools:\n  - nomod.func\n"), f"{A}:7:5 tools[0]: no tool module tools/nomod.py", id="tool-module-missing"
    ),
    pytest.param(
        agent("tools:\n  - ../etc.passwd\n"),
        f"{A}:7:5 tools[0]: '../etc.passwd': '../etc' is not a module path under tools/ (identifiers and dots only)",
        id="tool-ref-escape",
    ),
    pytest.param(
        agent("tools:\n  - good\n"),
        f"{A}:7:5 tools[0]: 'good' is not a tool ref: use module.function (e.g. documents.parse_pdf)",
        id="tool-ref-no-dot",
    ),
    pytest.param(
        agent("tools:\n  - good.missing\n"),
        f"{A}:7:5 tools[0]: no function 'missing' in tools/good.py",
        id="tool-func-missing",
    ),
    pytest.param(
        agent("tools:\n  - good.CONST\n"),
        f"{A}:7:5 tools[0]: 'CONST' in tools/good.py is not a function",
        id="tool-not-function",
    ),
    pytest.param(
        agent("tools:\n  - good.imported\n"),
        f"{A}:7:5 tools[0]: 'imported' is imported into tools/good.py; reference the module that defines it",
        id="tool-imported",
    ),
    pytest.param(
        agent("tools:\n  - good.varargs\n"),
        f"{A}:7:5 tools[0]: tool 'good.varargs': parameter 'args' is *args; tools take named parameters only",
        id="tool-varargs",
    ),
    pytest.param(
        agent("tools:\n  - good.kwargs\n"),
        f"{A}:7:5 tools[0]: tool 'good.kwargs': parameter 'options' is **kwargs; tools take named parameters only",
        id="tool-kwargs",
    ),
    pytest.param(
        agent("tools:\n  - good.posonly\n"),
        f"{A}:7:5 tools[0]: tool 'good.posonly': parameter 'a' is positional-only; tools take named parameters only",
        id="tool-positional-only",
    ),
    pytest.param(
        agent("tools:\n  - good.bad_union\n"),
        f"{A}:7:5 tools[0]: tool 'good.bad_union': parameter 'v': unions other than Optional[X] / X | None are not supported",
        id="tool-union",
    ),
    pytest.param(
        agent("tools:\n  - good.varargs\n"),
        "tools/good.py:15:1: tool 'good.varargs': parameter 'args' is *args; tools take named parameters only",
        id="tool-varargs-at-def",
    ),
    pytest.param(
        agent("tools:\n  - good.bad_union\n"),
        "tools/good.py:27:1: tool 'good.bad_union': parameter 'v': unions other than Optional[X] / X | None are "
        "not supported",
        id="tool-union-at-def",
    ),
    pytest.param(
        agent("tools:\n  - good.stor\n"),
        f"{A}:7:5 tools[0]: no function 'stor' in tools/good.py — did you mean `good.store`?",
        id="tool-func-misspelt",
    ),
    pytest.param(
        agent("tools:\n  - goood.f\n"),
        f"{A}:7:5 tools[0]: no tool module tools/goood.py — did you mean `good.f`?",
        id="tool-module-misspelt",
    ),
    pytest.param(
        agent("temprature: 0.5\n"),
        f"{A}:6:1 temprature: unknown key `temprature` — did you mean `temperature`?",
        id="key-misspelt",
    ),
    pytest.param(
        agent("tools:\n  - good.zz_*\n"),
        f"{A}:7:5 tools[0]: wildcard 'good.zz_*' matched no function in tools/good.py",
        id="wildcard-no-match",
    ),
    pytest.param(
        agent("tools:\n  - good.f: import os\n"),
        f"{A}:7:13 tools[0]: condition of 'good.f': invalid condition syntax: invalid syntax",
        id="condition-syntax",
    ),
    pytest.param(
        agent("tools:\n  - good.f: x == 1\n"),
        f"{A}:7:13 tools[0]: condition of 'good.f': unknown name 'x': use input.<key> or context.<key>",
        id="condition-name",
    ),
    pytest.param(
        agent("tools:\n  - good.f: \"__import__('os').system('ls')\"\n"),
        f"{A}:7:13 tools[0]: condition of 'good.f': Call is not allowed in a condition",
        id="condition-call",
    ),
    pytest.param(
        agent("tools:\n  - {good.f: input.a, good.g: input.b}\n"),
        f"{A}:7:5 tools[0]: a conditional tool must be a map with exactly one key (got 2 keys)",
        id="condition-two-keys",
    ),
    pytest.param(
        agent("tools:\n  - good.f\n  - other.f\n"),
        f"{A}:8:5 tools[1]: tool name 'f' (other.f) is already given by tools[0] (good.f); the LLM sees bare "
        "function names, which must be unique per agent",
        id="tool-name-clash",
    ),
    pytest.param(
        agent("tools:\n  - boom.run\n"),
        "tools/boom.py:1:1: importing tools/boom.py raised RuntimeError: kaboom: missing API key "
        f"— used by {A}:7:5 tools[0] (boom.run)",
        id="tool-import-raises",
    ),
    pytest.param(
        agent("tools: [" + ", ".join(f"good.f{i}" for i in range(101)) + "]\n"),
        f"{A}:6:8 tools: must have at most 100 entries (got 101)",
        id="too-many-tools",
    ),
    # output schemas
    pytest.param(
        agent("output_schema: nothing\n"),
        f"{A}:6:16 output_schema: no schema schemas/nothing.json",
        id="schema-missing",
    ),
    pytest.param(
        agent("output_schema: ../secret\n"),
        f"{A}:6:16 output_schema: must be a schema name like 'invoice' for schemas/invoice.json, not a path "
        "(got '../secret')",
        id="schema-escape",
    ),
    pytest.param(
        {**agent("output_schema: arr\n"), "schemas/arr.json": '{"type": "array"}'},
        "schemas/arr.json:1:10 type: the top-level type must be \"object\" (got 'array')",
        id="schema-not-object",
    ),
    pytest.param(
        {**agent("output_schema: broken\n"), "schemas/broken.json": '{\n  "type": "object",\n}'},
        "schemas/broken.json:3:1: invalid JSON: Expecting property name enclosed in double quotes",
        id="schema-bad-json",
    ),
    pytest.param(
        {
            **agent("output_schema: bad\n"),
            "schemas/bad.json": '{\n  "type": "object",\n  "properties": {"a": {"type": 5}}\n}',
        },
        "schemas/bad.json:3:32 properties.a.type: not a valid JSON Schema: 5 is not valid under any of the given schemas",
        id="schema-invalid",
    ),
    # sequential and tool agents
    pytest.param(seq("agents: []\n"), f"{A}:5:9 agents: must not be empty", id="sequential-empty"),
    pytest.param(
        seq("agents: [nobody]\n"), f"{A}:5:10 agents[0]: no agent named 'nobody'", id="sequential-unknown-stage"
    ),
    pytest.param(
        seq("agents: [a]\n"), f"{A}:5:9 agents: sequential chain contains itself: a → a", id="sequential-self"
    ),
    pytest.param(
        {
            **seq("agents: [b]\n"),
            "agents/b.yaml": 'version: "1.0"\nname: b\ndescription: x\ntype: sequential\nagents:\n  - a\n',
        },
        f"{A}:5:9 agents: sequential chain contains itself: a → b → a",
        id="sequential-indirect",
    ),
    pytest.param(tool_agent(""), f"{A}:1:1 tool_name: is required", id="tool-agent-no-tool-name"),
    pytest.param(
        tool_agent("tool_name: good.no_payload\n"),
        f"{A}:5:12 tool_name: 'good.no_payload' must take a 'payload' parameter (and optionally 'context')",
        id="tool-agent-no-payload",
    ),
    pytest.param(
        tool_agent("tool_name: good.extra_param\n"),
        f"{A}:5:12 tool_name: 'good.extra_param' may only take 'payload' and 'context' (remove flag)",
        id="tool-agent-extra-param",
    ),
    pytest.param(
        tool_agent("tool_name: good.st*\n"),
        f"{A}:5:12 tool_name: 'good.st*': a tool agent names exactly one function, not a wildcard",
        id="tool-agent-wildcard",
    ),
    # files
    pytest.param(
        {**agent(), "agents/sub/b.yaml": HEADER},
        "agents/sub/b.yaml:2:7 name: agent name 'a' is already used by agents/a.yaml",
        id="duplicate-agent-name",
    ),
    pytest.param(
        {**agent(), "agents/_defaults.yaml": "name: shared\n"},
        "agents/_defaults.yaml:1:1 name: may not appear in _defaults.yaml: set it in each agent file",
        id="defaults-name",
    ),
    pytest.param(
        {**agent(), "agents/_defaults.yaml": "temperature: 0\ndescription: shared\n"},
        "agents/_defaults.yaml:2:1 description: may not appear in _defaults.yaml: set it in each agent file",
        id="defaults-description",
    ),
    pytest.param(
        {A: HEADER.replace('version: "1.0"\n', ""), "agents/_defaults.yaml": 'version: "1.0"\n'},
        f"{A}:1:1 version: must be set in the agent file itself, not inherited from _defaults.yaml",
        id="version-from-defaults",
    ),
    pytest.param(
        {**agent(), "agents/_defaults.yaml": "retry_options:\n  attempts: 11\n"},
        "agents/_defaults.yaml:2:13 retry_options.attempts: must be between 1 and 10 (got 11)",
        id="defaults-bad-value",
    ),
    pytest.param(
        agent("tools: [good.f\n"), f"{A}:7:1: invalid YAML: did not find expected ',' or ']'", id="yaml-syntax"
    ),
    pytest.param(
        agent("temperature: 0.1\ntemperature: 0.2\n"),
        f"{A}:7:1 temperature: duplicate key 'temperature'; only the last one would count",
        id="yaml-duplicate-key",
    ),
    pytest.param({A: "- version: 1.0\n"}, f"{A}:1:1: an agent file must be a YAML map (got list)", id="agent-not-map"),
    pytest.param({A: ""}, f"{A}:1:1: an agent file must be a YAML map (got an empty file)", id="agent-empty"),
    pytest.param(
        {A: "name: !!python/object/apply:os.system ['true']\n"},
        f"{A}:1:7: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'",
        id="yaml-unsafe-tag",
    ),
    # project files
    pytest.param(
        {**agent(), "ferry.yaml": "models:\n  openai/gpt-4o-mini:\n    requests_per_minute: 0\n"},
        "ferry.yaml:3:26 models.openai/gpt-4o-mini.requests_per_minute: must be at least 1 (got 0)",
        id="config-rpm",
    ),
    pytest.param(
        {**agent(), "ferry.yaml": "models:\n  m:\n    input_cost_per_token: -1\n"},
        "ferry.yaml:3:27 models.m.input_cost_per_token: must be at least 0 (got -1)",
        id="config-cost",
    ),
    pytest.param(
        {**agent(), "topics/core.yaml": "topics:\n  - name: runs.results\n    pattern: runs.*\n"},
        "topics/core.yaml:2:5 topics[0]: give exactly one of 'name' or 'pattern'",
        id="topic-name-and-pattern",
    ),
    pytest.param(
        {**agent(), "topics/core.yaml": "topics:\n  - name: runs.results\n    partitions: 0\n"},
        "topics/core.yaml:3:17 topics[0].partitions: must be between 1 and 10000 (got 0)",
        id="topic-partitions",
    ),
    pytest.param(
        {**agent(), "topics/core.yaml": "topics:\n  - name: runs.results\n    cleanup_policy: keep\n"},
        "topics/core.yaml:3:21 topics[0].cleanup_policy: must be 'delete', 'compact' or 'compact,delete' (got 'keep')",
        id="topic-cleanup",
    ),
    pytest.param(
        {**agent(), "connectors/hook.yaml": "type: webhook\nname: hook\nurl: ftp://x\n"},
        "connectors/hook.yaml:3:6 url: must be an http(s):// URL or start with ${ENV_VAR} (got 'ftp://x')",
        id="webhook-url",
    ),
    pytest.param(
        {**agent(), "connectors/hook.yaml": "type: webhook\nname: hook\nurl: https://x\nsecret_env: my secret\n"},
        "connectors/hook.yaml:4:13 secret_env: must be an environment variable name like WEBHOOK_SECRET "
        "(got 'my secret')",
        id="webhook-secret-env",
    ),
    pytest.param(
        {**agent(), "connectors/hook.yaml": "type: webhook\nname: hook\nurl: https://x\nretries: 50\n"},
        "connectors/hook.yaml:4:10 retries: must be between 0 and 20 (got 50)",
        id="webhook-retries",
    ),
    pytest.param(
        {**agent(), "connectors/pg.json": '{\n  "name": "pg-sink",\n  "config": {"topics": "runs.results"}\n}'},
        "connectors/pg.json:3:13 config: 'connector.class' is required",
        id="connect-no-class",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_mistake_is_reported_with_its_position(
    make_project: ProjectFactory, files: dict[str, str], expected: str
) -> None:
    root: Path = make_project(files)
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    reported = [str(p) for p in caught.value.errors]
    assert any(line.startswith(expected) for line in reported), "\n".join(reported)


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
