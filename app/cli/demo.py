"""`ferry demo`: the main job of `make run`, on the stack `ferry dev up` started.

1. a broker round trip with Ferry's wire format (the stack's proof of life);
2. the LLM simulator with the invoice scenario, unless a provider key is set;
3. a worker in this process running the example project;
4. each sample invoice submitted to `invoice-pipeline`; the pipeline results printed
   as a table. Exit 0 only when every invoice completed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.cli.broker import require_broker
from app.cli.process_main import run_main
from app.cli.subparsers import Subparsers
from app.contracts import document_input

PIPELINE = "invoice-pipeline"


class InvoiceSample(BaseModel):
    file: str
    payload: dict[str, Any]
    expected: dict[str, Any]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("demo", help="run the demo job on the local dev stack")
    parser.add_argument("--project", default=".", help="project folder (default: .)")
    parser.add_argument("--samples", default="samples/invoices", help="folder of sample invoices")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all results")
    parser.set_defaults(handler=_demo)


def invoice_samples(folder: Path) -> list[InvoiceSample]:
    """Each sample document with its expected fields, as a pipeline request payload."""
    samples = []
    for meta_path in sorted(folder.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        document = folder / meta["file"]
        payload = document_input(meta["file"], document.read_bytes(), meta["mime_type"])
        samples.append(InvoiceSample(file=meta["file"], payload=payload, expected=meta.get("expected", {})))
    return samples


def _demo(args: argparse.Namespace) -> int:
    from app.cli.worker import configure_logging
    from app.devstack.smoke import broker_round_trip
    from app.streams.connect import ensure_broker

    configure_logging()
    bootstrap = require_broker()
    asyncio.run(ensure_broker(bootstrap))  # ServiceUnreachableError: one line, exit 2
    report = asyncio.run(broker_round_trip(bootstrap))
    print(
        f"ferry: broker round trip via {bootstrap}: {report.received}/{report.sent} run requests "
        f"came back in {report.seconds:.2f}s"
    )
    if report.received != report.sent:
        return 1
    return run_main(_invoice_job(bootstrap, Path(args.project), Path(args.samples), args.timeout))


async def _invoice_job(bootstrap: str, project_dir: Path, samples_dir: Path, timeout: float) -> int:
    from app.contracts import RunRequest, RunStatus
    from app.contracts.errors import ConfigError
    from app.devstack.llm_sim import LLMSimulator
    from app.devstack.scenarios.invoice import invoice_rules
    from app.engine import EngineSettings
    from app.engine.provider_keys import missing_provider_keys
    from app.project import load_project
    from app.streams import ResultWatcher, StreamSettings, Submitter, Worker

    project = load_project(project_dir)
    samples = invoice_samples(samples_dir)
    if not samples:
        raise ConfigError(f"no sample invoices in {samples_dir} — fix: pass --samples FOLDER (*.json + documents)")
    simulator: LLMSimulator | None = None
    if not os.environ.get("FERRY_LLM_BASE_URL") and missing_provider_keys(project, PIPELINE):
        rules = [rule for sample in samples for rule in invoice_rules(project, sample.payload)]
        simulator = LLMSimulator(rules, latency_ms=50)
        await simulator.start()
        print(
            "\n" + "!" * 78 + "\n!! NO PROVIDER KEY FOR THE PIPELINE'S MODELS (e.g. GEMINI_API_KEY): the demo\n"
            "!! runs on the LLM SIMULATOR with the scripted invoice scenario, not a real model.\n" + "!" * 78 + "\n",
            file=sys.stderr,
        )
    engine_settings = EngineSettings(llm_base_url=simulator.base_url) if simulator else EngineSettings()
    settings = StreamSettings(bootstrap=bootstrap, app_id="ferry-demo", agents=(PIPELINE,))
    started = time.monotonic()
    try:
        async with Worker(project, settings, engine_settings=engine_settings) as worker:
            requests = {
                sample.file: RunRequest.new(PIPELINE, sample.payload, trigger={"source": "demo"}) for sample in samples
            }
            async with (
                ResultWatcher(bootstrap, worker.names) as watcher,
                Submitter(bootstrap, project, worker.names) as submitter,
            ):
                for request in requests.values():
                    await submitter.submit(request)
                print(f"ferry: submitted {len(requests)} invoices to {PIPELINE}; waiting for results…")
                results = await watcher.wait_for([r.run_id for r in requests.values()], timeout=timeout)
    finally:
        if simulator is not None:
            await simulator.stop()
    print(_table([(f, results.get(r.run_id)) for f, r in requests.items()]))
    completed = sum(1 for r in results.values() if r.status == RunStatus.COMPLETED)
    print(f"ferry: {completed}/{len(requests)} invoices completed in {time.monotonic() - started:.1f}s")
    return 0 if completed == len(requests) else 1


def _table(rows: list[tuple[str, Any]]) -> str:
    header = ("file", "status", "vendor", "total", "tokens", "duration")
    lines = [header]
    for file, result in rows:
        if result is None:
            lines.append((file, "no result", "-", "-", "-", "-"))
            continue
        output = result.output if isinstance(result.output, dict) else {}
        status = result.status.value + (f" ({result.error.category.value})" if result.error else "")
        lines.append(
            (
                file,
                status,
                str(output.get("vendor") or "-"),
                str(output.get("total") or "-"),
                str(result.usage.total_tokens),
                f"{result.duration_ms / 1000:.1f}s",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in lines)
