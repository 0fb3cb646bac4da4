"""A project written for Connic (connic-composer-sdk layout and keys) loads in Ferry unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.project import LLMAgentSpec, SequentialAgentSpec, ToolAgentSpec, lint_project, load_project, select_tools

from .conftest import HEADER, ProjectFactory, write_project

CONNIC_PROJECT = {
    "requirements.txt": "httpx\n",
    "agents/_defaults.yaml": """\
        version: "1.0"
        model: gemini/gemini-2.5-flash
        retry_options:
          attempts: 4
          initial_delay: 5
        max_iterations: 20
    """,
    "agents/support/_defaults.yaml": """\
        tools:
          - crm.lookup_customer
        concurrency:
          key: customer.id
    """,
    "agents/support/triage.yaml": """\
        version: "1.0"
        name: support-triage
        description: Classifies a support ticket
        system_prompt: |
          Classify the ticket for {company}. Use the tools when useful.
        temperature: 0.2
        tools:
          - crm.*
          - billing.refunds.issue_refund: "input.amount <= 50 and context.tier == 'gold'"
        output_schema: triage
        concurrency:
          key: customer.id
          on_conflict: drop
        timeout: 120
        max_concurrent_runs: 5
    """,
    "agents/support/summary.yaml": """\
        version: "1.0"
        name: support-summary
        description: Writes a reply
        system_prompt: Write a reply to the customer.
        fallback_model: openai/gpt-4o-mini
        retry_options:
          attempts: 2
          max_delay: 10
          attempt_timeout: 60
    """,
    "agents/ingest.yaml": """\
        version: "1.0"
        name: ingest-ticket
        description: Normalises the raw webhook body
        type: tool
        tool_name: billing.refunds.normalise
        retry_options:
          attempts: 2
    """,
    "agents/flow.yaml": """\
        version: "1.0"
        name: support-flow
        description: Ingest, triage, answer
        type: sequential
        agents: [ingest-ticket, support-triage, support-summary]
    """,
    "agents/outer.yaml": """\
        version: "1.0"
        name: outer-flow
        description: A chain that contains a chain
        type: sequential
        agents: [support-flow, support-summary]
    """,
    "agents/.drafts/wip.yaml": "this: [is not even valid\n",
    "tools/crm.py": '''\
        from typing import Optional


        def lookup_customer(email: str, context: dict) -> dict:
            """Find a customer by e-mail.

            Args:
                email: The customer's e-mail address.
            """
            return {"email": email, "run": context.get("run_id")}


        def list_tickets(customer_id: str, limit: Optional[int] = 10, tags: list[str] | None = None) -> list:
            """List a customer's open tickets."""
            return []


        def _private_helper():
            return None
    ''',
    "tools/billing/refunds.py": '''\
        async def issue_refund(order_id: str, amount: float) -> dict:
            """Refund an order."""
            return {"order_id": order_id, "amount": amount}


        def normalise(payload: dict, context: dict) -> dict:
            return {"ticket": payload}
    ''',
    "schemas/triage.json": '{"type": "object", "properties": {"category": {"enum": ["bug", "billing", "other"]}},'
    ' "required": ["category"]}',
    "middleware/support-triage.py": "async def before(content, context):\n    return content\n",
    "tests/support-triage.yaml": "agent: support-triage\ntests: []\n",
}


@pytest.fixture
def connic_root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "connic", CONNIC_PROJECT)


def test_connic_project_loads_unchanged(connic_root: Path) -> None:
    project = load_project(connic_root)
    assert set(project.agents) == {"support-triage", "support-summary", "ingest-ticket", "support-flow", "outer-flow"}

    triage = project.agents["support-triage"]
    assert isinstance(triage, LLMAgentSpec)
    assert (triage.model, triage.temperature, triage.max_iterations, triage.timeout) == (
        "gemini/gemini-2.5-flash",
        0.2,
        20,
        120,
    )
    assert (triage.retry_options.attempts, triage.retry_options.initial_delay) == (4, 5)
    assert triage.concurrency is not None and triage.concurrency.on_conflict == "drop"
    assert [t.name for t in triage.resolved_tools] == ["lookup_customer", "list_tickets", "issue_refund"]
    refund = triage.resolved_tools[2]
    assert refund.is_async and refund.ref == "billing.refunds.issue_refund"
    assert [t.name for t in select_tools(triage, {"amount": 20}, {"tier": "gold"})][-1] == "issue_refund"
    assert "issue_refund" not in [t.name for t in select_tools(triage, {"amount": 80}, {"tier": "gold"})]
    assert project.output_schema_for("support-triage") == project.schemas["triage"]

    summary = project.agents["support-summary"]
    assert isinstance(summary, LLMAgentSpec)
    assert summary.fallback_model == "openai/gpt-4o-mini"
    assert (summary.retry_options.attempts, summary.retry_options.max_delay, summary.retry_options.attempt_timeout) == (
        2,
        10,
        60,
    )
    assert summary.concurrency is not None and summary.concurrency.key == "customer.id"  # from support/_defaults

    ingest = project.agents["ingest-ticket"]
    assert isinstance(ingest, ToolAgentSpec) and ingest.resolved_tools[0].takes_context
    flow = project.agents["outer-flow"]
    assert isinstance(flow, SequentialAgentSpec) and flow.agents == ("support-flow", "support-summary")
    # Its middleware is run now: imported at load, kept for its agent, and no warning.
    assert project.warnings == ()
    middleware = project.middleware["support-triage"]
    assert middleware.before is not None and middleware.after is None


def test_tool_schemas_match_connics_generation(connic_root: Path) -> None:
    tools = {t.name: t for t in load_project(connic_root).tools_for("support-triage")}
    assert tools["list_tickets"].parameters == {
        "type": "object",
        "properties": {
            "customer_id": {"type": "string"},
            "limit": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["customer_id"],
    }
    assert tools["lookup_customer"].parameters["properties"] == {
        "email": {"type": "string", "description": "The customer's e-mail address."}
    }
    assert tools["lookup_customer"].takes_context


def test_connics_coalesce_loads_and_lints_clean(make_project: ProjectFactory) -> None:
    root = make_project({"agents/a.yaml": HEADER + "concurrency:\n  key: doc.id\n  on_conflict: coalesce\n"})
    agent = load_project(root).agents["a"]
    assert isinstance(agent, LLMAgentSpec) and agent.concurrency is not None
    assert agent.concurrency.on_conflict == "coalesce"
    report = lint_project(root)
    assert report.errors == [] and [w for w in report.warnings if w.loc.file == "agents/a.yaml"] == []
