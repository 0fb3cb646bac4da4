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
`--sim` starts the LLM simulator in-process, scripted with the invoice demo scenario.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from app.cli.process_main import run_main
from app.cli.run_input import InputError, read_input


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one agent locally and show its trace",
        description="Run one agent (or pipeline) locally, without Kafka, printing its live step trace.",
    )
    parser.add_argument("agent", help="agent name")
    parser.add_argument("--input", default="{}", help="input as JSON text, or @file (.json, or a document to attach)")
    parser.add_argument("--project", default=".", help="project directory (default: .)")
    parser.add_argument("--tenant", default="default", help="tenant of the run (default: default)")
    parser.add_argument("--sim", action="store_true", help="answer with the in-process LLM simulator (invoice demo)")
    parser.add_argument("--quiet", action="store_true", help="no trace, only the result JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from app.project import ProjectError, load_project

    try:
        payload = read_input(args.input)
        project = load_project(args.project)
    except InputError as exc:
        print(f"ferry run: {exc}", file=sys.stderr)
        return 2
    except ProjectError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    if args.agent not in project.agents:
        print(f"ferry run: no agent {args.agent!r} (known: {', '.join(sorted(project.agents))})", file=sys.stderr)
        return 2
    if not args.sim and not os.environ.get("FERRY_LLM_BASE_URL"):
        from app.engine.provider_keys import missing_provider_keys

        missing = missing_provider_keys(project, args.agent)
        if missing:
            print(
                f"ferry run: no provider key for this agent's models (missing: {', '.join(missing)}).\n"
                "Set the key, point FERRY_LLM_BASE_URL at an OpenAI-compatible server, or add --sim "
                "to answer with the built-in LLM simulator.",
                file=sys.stderr,
            )
            return 2
    return run_main(_run(args, project, payload))


async def _run_once(project: Any, request: Any, on_span: Any, settings: Any) -> Any:
    from app.engine import Engine

    engine = Engine(project, settings=settings)
    try:
        return await engine.run(request, on_span=on_span)
    finally:
        await engine.aclose()


async def _run(args: argparse.Namespace, project: Any, payload: Any) -> int:
    from app.contracts import RunRequest
    from app.engine import EngineSettings

    request = RunRequest.new(args.agent, payload, tenant=args.tenant, trigger={"source": "cli"})
    printer = TracePrinter(sys.stderr)
    on_span = None if args.quiet else printer
    if args.sim:
        from app.devstack.llm_sim import LLMSimulator
        from app.devstack.scenarios.invoice import invoice_rules

        rules = invoice_rules(project, request.input) if "invoice-extractor" in project.agents else []
        async with LLMSimulator(rules) as sim:
            result = await _run_once(project, request, on_span, EngineSettings(llm_base_url=sim.base_url))
    else:
        result = await _run_once(project, request, on_span, EngineSettings())
    print(result.model_dump_json(indent=2))
    usage = result.usage
    cost = "unknown" if usage.cost_usd is None else f"${usage.cost_usd:.6f}"
    error = f" ({result.error.category.value}: {result.error.message})" if result.error else ""
    print(
        f"{result.status.value}{error} in {result.duration_ms:.0f} ms; "
        f"{usage.total_tokens} tokens ({usage.prompt_tokens} prompt + {usage.completion_tokens} completion), "
        f"cost {cost}; {usage.llm_calls} LLM call(s), {usage.tool_calls} tool call(s)",
        file=sys.stderr,
    )
    return 0 if result.status.value == "completed" else 1


class TracePrinter:
    """One line per finished span: kind, name, duration, then tokens, cost and error."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, span: Any) -> None:
        attrs = span.attributes
        details = []
        if "llm.total_tokens" in attrs:
            details.append(f"tokens={attrs['llm.total_tokens']}")
        elif "llm.prompt_tokens" in attrs:
            details.append(f"tokens={attrs['llm.prompt_tokens'] + attrs.get('llm.completion_tokens', 0)}")
        if attrs.get("cost_usd") is not None:
            details.append(f"cost=${attrs['cost_usd']:.6f}")
        if "wait_seconds" in attrs:
            details.append(f"wait={attrs['wait_seconds']}s")
        if "error.category" in attrs:
            details.append(f"error={attrs['error.category']}")
        line = f"{span.kind.value:<17} {span.name:<44} {span.duration_ms:>9.1f} ms  {' '.join(details)}"
        print(line.rstrip(), file=self.stream, flush=True)
