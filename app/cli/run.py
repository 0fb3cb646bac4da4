"""`ferry run AGENT --input JSON|@file`: one run, locally, no Kafka, with its live trace.

    ferry run resilient-agent --input '{"message": "Where is order 123?", "language": "en"}'
    ferry run invoice-pipeline --input @samples/invoices/acme-a-7781.pdf --sim

`--input @file`: a `.json` file is the input object; any other file (PDF, PNG…) is
attached as the request's one document, `{"files": [{name, mime_type, data}]}`.
The trace (one line per finished span) and a summary go to stderr, the RunResult JSON
to stdout, so `ferry run … | jq .output` works. Exit 0 completed, 1 the run did not
complete, 2 the command could not run (bad project, bad input, no provider).

Providers: with FERRY_LLM_BASE_URL set, models are called there (OpenAI-compatible);
otherwise litellm uses the provider keys in the environment (GEMINI_API_KEY, …).
`--sim` starts the LLM simulator in-process: in the example project it plays the invoice
scenario, elsewhere every call gets its generic reply ("Simulated reply to: …").
`--sim-rules FILE` scripts it with a rules file instead (docs/llm-simulator.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.process_main import run_main
from app.cli.run_input import read_input
from app.cli.subparsers import Subparsers
from app.contracts.errors import BadInputError, ConfigError, ServiceUnreachableError

if TYPE_CHECKING:
    from app.cli.run_output import LingeringTools
    from app.devstack.llm_sim import Rule
    from app.project import Project


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one agent locally and show its trace",
        description="Run one agent (or pipeline) locally, without Kafka, printing its live step trace.",
    )
    parser.add_argument("agent", help="agent name")
    parser.add_argument("--input", default="{}", help="input as JSON text, or @file (.json, or a document to attach)")
    parser.add_argument("--project", default=".", help="project directory (default: .)")
    parser.add_argument("--tenant", default="default", help="tenant of the run (default: default)")
    parser.add_argument(
        "--sim",
        action="store_true",
        help="answer with the in-process LLM simulator: the invoice scenario in the example project, "
        "a generic reply elsewhere",
    )
    parser.add_argument(
        "--sim-rules",
        metavar="FILE",
        help="script the simulator with this rules JSON (docs/llm-simulator.md); implies --sim",
    )
    parser.add_argument("--quiet", action="store_true", help="no trace, only the result JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from app.cli.run_output import LingeringTools
    from app.project import load_project

    payload = read_input(args.input)  # InputError, ProjectError: one line and exit 2 (app.cli.main)
    project = load_project(args.project)
    if args.agent not in project.agents:
        known = ", ".join(sorted(project.agents)) or "none"
        raise BadInputError(f"no agent {args.agent!r} in {project.root} (known: {known})")
    sim_rules = read_sim_rules(Path(args.sim_rules)) if args.sim_rules else None
    if not (args.sim or sim_rules is not None):
        _require_a_provider(project, args.agent)
    lingering = LingeringTools()
    code = run_main(_run(args, project, payload, sim_rules, lingering))
    lingering.wait(sys.stderr)
    return code


def _require_a_provider(project: Project, agent: str) -> None:
    """The models answer: the FERRY_LLM_BASE_URL server accepts connections, or the keys are set."""
    base_url = os.environ.get("FERRY_LLM_BASE_URL")
    if base_url:
        require_llm_server(base_url)
        return
    from app.engine.provider_keys import missing_provider_keys

    missing = missing_provider_keys(project, agent)
    if missing:
        raise ConfigError(no_provider_message(project, agent, missing))


def require_llm_server(base_url: str, timeout: float = 3.0) -> None:
    """FERRY_LLM_BASE_URL accepts connections: one line now, not a run failing after its retries."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    fix = "start that server, or unset FERRY_LLM_BASE_URL to call providers with their keys, or add --sim"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"FERRY_LLM_BASE_URL={base_url} is not a URL — fix: e.g. http://127.0.0.1:8000/v1") from None
    if not parts.hostname or parts.scheme not in ("http", "https"):
        raise ConfigError(f"FERRY_LLM_BASE_URL={base_url} is not an http(s) URL — fix: e.g. http://127.0.0.1:8000/v1")
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError:
        raise ServiceUnreachableError("the LLM server (FERRY_LLM_BASE_URL)", base_url, fix) from None


def no_provider_message(project: Project, agent: str, missing: list[str]) -> str:
    """The fix that works for this agent: `--sim` only where the simulator can satisfy it."""
    from app.devstack.scenarios.invoice import scenario_applies

    keys = ", ".join(missing)  # litellm lists every name a key may have: one of them suffices
    head = f"no provider key for the models of {agent!r} (missing: {keys}) — fix: set the key, or point "
    head += "FERRY_LLM_BASE_URL at an OpenAI-compatible server"
    if scenario_applies(project):
        return head + ", or add --sim to answer with the LLM simulator's scripted invoice scenario"
    if _answers_to_a_schema(project, agent, set()):
        return (
            head + ", or script the LLM simulator with --sim-rules FILE (docs/llm-simulator.md): "
            'plain --sim answers "Simulated reply to: …", which no output schema accepts'
        )
    return head + ", or add --sim to answer every call with the LLM simulator's generic reply"


def _answers_to_a_schema(project: Project, agent_name: str, seen: set[str]) -> bool:
    """Whether the agent, or a stage of it, must answer in an output schema."""
    from app.project import LLMAgentSpec, SequentialAgentSpec

    if agent_name in seen or agent_name not in project.agents:
        return False
    seen.add(agent_name)
    agent = project.agents[agent_name]
    if isinstance(agent, SequentialAgentSpec):
        return any(_answers_to_a_schema(project, stage, seen) for stage in agent.agents)
    return isinstance(agent, LLMAgentSpec) and agent.output_schema is not None


def read_sim_rules(path: Path) -> list[Rule]:
    """The `--sim-rules` file as simulator rules; a bad file is a user error naming file and reason."""
    from pydantic import ValidationError

    from app.devstack.llm_sim import RuleSet

    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise BadInputError(f"--sim-rules {path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"--sim-rules {path} is not JSON: {exc}") from None
    if isinstance(document, list):  # a bare list of rules is accepted, as by the simulator
        document = {"rules": document}
    if not isinstance(document, dict):
        raise BadInputError(f'--sim-rules {path}: expected {{"rules": [...]}} or a list of rules')
    try:
        return list(RuleSet.model_validate(document).rules)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:3]
        )
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise BadInputError(
            f"--sim-rules {path} is not a valid rules file: {reasons}{more} (format: docs/llm-simulator.md)"
        ) from None


async def _run_once(project: Any, request: Any, on_span: Any, settings: Any) -> Any:
    from app.engine import Engine

    engine = Engine(project, settings=settings)
    try:
        return await engine.run(request, on_span=on_span)
    finally:
        await engine.aclose()


async def _run(
    args: argparse.Namespace, project: Project, payload: Any, sim_rules: list[Rule] | None, lingering: LingeringTools
) -> int:
    from app.cli.run_output import TracePrinter, summary_line
    from app.contracts import RunRequest, SpanEvent
    from app.engine import EngineSettings

    request = RunRequest.new(args.agent, payload, tenant=args.tenant, trigger={"source": "cli"})
    printer = TracePrinter(sys.stderr)

    def on_span(span: SpanEvent) -> None:
        lingering(span)
        if not args.quiet:
            printer(span)

    if args.sim or sim_rules is not None:
        from app.devstack.llm_sim import LLMSimulator

        async with LLMSimulator(_simulator_rules(project, request.input, sim_rules)) as sim:
            result = await _run_once(project, request, on_span, EngineSettings(llm_base_url=sim.base_url))
    else:
        result = await _run_once(project, request, on_span, EngineSettings())
    print(result.model_dump_json(indent=2))
    print(summary_line(result), file=sys.stderr)
    return 0 if result.status.value == "completed" else 1


def _simulator_rules(project: Project, payload: Any, sim_rules: list[Rule] | None) -> list[Rule]:
    """The user's rules; else the invoice scenario where it applies; else none (the generic reply)."""
    from app.devstack.scenarios.invoice import invoice_rules, scenario_applies

    if sim_rules is not None:
        return sim_rules
    if scenario_applies(project) and isinstance(payload, Mapping):
        return invoice_rules(project, payload)
    return []
