"""The loaded `Project`: immutable, hashed, with topics, connectors and ferry.yaml."""

from __future__ import annotations

import dataclasses
import hashlib

import pydantic
import pytest

from app.project import KafkaConnectSpec, LLMAgentSpec, WebhookConnectorSpec, load_project

from .conftest import HEADER, ProjectFactory

TOPICS = """\
topics:
  - class: results
    name: runs.results
    partitions: 6
    replication: 3
    cleanup_policy: compact
  - class: requests
    pattern: "agent.*.requests"
    partitions: 12
    retention_ms: 604800000
    config:
      min.insync.replicas: 2
"""

CONNECT = """\
{
  "name": "runs-to-postgres",
  "config": {
    "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
    "topics": "runs.results",
    "tasks.max": 1,
    "auto.create": true
  }
}
"""

WEBHOOK = """\
type: webhook
name: billing-hook
url: https://billing.example.com/ferry
secret_env: BILLING_WEBHOOK_SECRET
retries: 8
agents: [a]
"""

CONFIG = """\
models:
  openai/gpt-4o-mini:
    input_cost_per_token: 0.00000015
    output_cost_per_token: 0.0000006
    requests_per_minute: 500
    tokens_per_minute: 200000
"""


@pytest.fixture
def full_project(make_project: ProjectFactory):  # type: ignore[no-untyped-def]
    return make_project(
        {
            "agents/a.yaml": HEADER + "tools: [good.f]\noutput_schema: answer\n",
            "schemas/answer.json": '{"type": "object", "properties": {"x": {"type": "string"}}}',
            "topics/core.yaml": TOPICS,
            "connectors/postgres.json": CONNECT,
            "connectors/billing.yaml": WEBHOOK,
            "ferry.yaml": CONFIG,
        }
    )


def test_project_holds_every_part(full_project) -> None:  # type: ignore[no-untyped-def]
    project = load_project(full_project)
    assert project.root == full_project.resolve()
    assert isinstance(project.agents["a"], LLMAgentSpec)
    assert project.output_schema_for("a") == project.schemas["answer"]
    results, requests = project.topics
    assert (results.name, results.topic_class, results.cleanup_policy, results.replication) == (
        "runs.results",
        "results",
        "compact",
        3,
    )
    assert requests.matches("agent.invoice-extractor.requests") and not requests.matches("agent.a.b.requests")
    assert dict(requests.config) == {"min.insync.replicas": "2"}
    connect, hook = project.connectors["runs-to-postgres"], project.connectors["billing-hook"]
    assert isinstance(connect, KafkaConnectSpec) and connect.config["tasks.max"] == "1"
    assert connect.config["auto.create"] == "true"
    assert isinstance(hook, WebhookConnectorSpec)
    assert (hook.secret_env, hook.retries, hook.topics) == ("BILLING_WEBHOOK_SECRET", 8, ("runs.results",))
    overrides = project.config.overrides_for("openai/gpt-4o-mini")
    assert overrides is not None and overrides.requests_per_minute == 500
    assert project.config.overrides_for("other/model") is None


def test_file_hashes_cover_every_file_read(full_project) -> None:  # type: ignore[no-untyped-def]
    project = load_project(full_project)
    assert set(project.file_hashes) == {
        "agents/a.yaml",
        "schemas/answer.json",
        "topics/core.yaml",
        "connectors/postgres.json",
        "connectors/billing.yaml",
        "ferry.yaml",
        "tools/good.py",
        "tools/other.py",
        "tools/boom.py",
    }
    expected = hashlib.sha256((full_project / "agents/a.yaml").read_bytes()).hexdigest()
    assert project.file_hashes["agents/a.yaml"] == expected


def test_content_hash_changes_with_any_file_and_only_then(full_project) -> None:  # type: ignore[no-untyped-def]
    first = load_project(full_project).content_hash
    assert load_project(full_project).content_hash == first
    (full_project / "tools/other.py").write_text("def f(z: float) -> float:\n    return -z\n")
    assert load_project(full_project).content_hash != first


def test_the_project_cannot_be_changed(full_project) -> None:  # type: ignore[no-untyped-def]
    project = load_project(full_project)
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.root = full_project  # type: ignore[misc]
    with pytest.raises(TypeError):
        project.agents["b"] = project.agents["a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        project.file_hashes["x"] = "y"  # type: ignore[index]
    with pytest.raises(pydantic.ValidationError):
        project.agents["a"].temperature = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        project.config.models["m"] = None  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.tools_for("a")[0].name = "other"  # type: ignore[misc]


def test_defaults_fill_the_documented_values(make_project: ProjectFactory) -> None:
    agent = load_project(make_project({"agents/a.yaml": HEADER})).agents["a"]
    assert isinstance(agent, LLMAgentSpec)
    assert (agent.temperature, agent.max_iterations, agent.max_concurrent_runs, agent.timeout) == (1.0, 100, 1, None)
    assert (agent.retry_options.attempts, agent.retry_options.initial_delay, agent.retry_options.max_delay) == (
        3,
        10,
        30,
    )
    assert (agent.isolation, agent.on_timeout, agent.budget, agent.tool_timeout) == ("inline", "partial", None, None)
    assert agent.tools == () and agent.output_schema is None and agent.concurrency is None


def test_unknown_agent_names_the_known_ones(make_project: ProjectFactory) -> None:
    project = load_project(make_project({"agents/a.yaml": HEADER}))
    with pytest.raises(KeyError, match="no agent 'zz' \\(known: a\\)"):
        project.agent("zz")


def test_agent_spec_union_defaults_to_an_llm_agent() -> None:
    from pydantic import TypeAdapter

    from app.project import AgentSpec, SequentialAgentSpec

    adapter = TypeAdapter(AgentSpec)
    base = {"version": "1.0", "name": "a", "description": "d"}
    assert isinstance(adapter.validate_python({**base, "model": "m/x", "system_prompt": "s"}), LLMAgentSpec)
    assert isinstance(adapter.validate_python({**base, "type": "sequential", "agents": ["b"]}), SequentialAgentSpec)
