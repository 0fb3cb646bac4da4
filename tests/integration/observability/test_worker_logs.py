"""`ferry worker --log-format json` as an operator's log pipeline reads it, on the real broker:
one JSON object per line, one line per finished run and per skipped duplicate, and the
run's run_id, agent, tenant and trace_id on every line logged during the run — a tool's
own line from its thread included.

And the planted-secrets test: a worker with a known API key in its environment (sent as
the `Authorization` header to the model, and quoted back by the provider's 401), and a
tool receiving a secret argument. Neither string may appear in the worker's log output,
the results topic, the traces topic or the history store."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from app.contracts import RunRequest, RunResult, RunStatus, SpanEvent
from app.devstack.llm_sim import FaultKind, FaultReply, LLMSimulator, Match, Rule, TextReply, ToolCall, ToolCallsReply
from app.observability.history import HistoryStore
from app.project import load_project
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import collect, produce, unique, wait_for
from tests.integration.streams.conftest import child_env, llm_agent, write_project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "sk-ferryplanted-0f3c9a7d5e21b846"
TOOL_SECRET = "tok-ferryplanted-7b1d4e9a2c"

TOOL_MODULE = '''
import logging

log = logging.getLogger("tools.vault")


def open_vault(vault: str, api_token: str) -> str:
    """Open a vault.

    Args:
        vault: which vault
        api_token: the vault's access token (a secret)
    """
    log.warning("opening vault %s", vault)
    return f"vault {vault} opened" if api_token else "no token"
'''


class WorkerProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.err = bytearray()

    def lines(self) -> list[str]:
        return self.err.decode().splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]  # every line is one JSON object


@asynccontextmanager
async def json_worker(project: Path, env: dict[str, str]) -> AsyncIterator[WorkerProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "worker", "--project", str(project), "--log-format", "json",
        "--metrics-port", "0", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    worker = WorkerProcess(process)
    assert process.stderr is not None
    stderr = process.stderr

    async def read() -> None:
        while chunk := await stderr.read(65536):
            worker.err.extend(chunk)

    reader = asyncio.ensure_future(read())
    try:
        await wait_for(lambda: b"consuming" in worker.err or reader.done(), 90, what="the worker to consume")
        assert not reader.done(), worker.err.decode()
        yield worker
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await process.wait()
            await reader
    assert process.returncode == 0, worker.err.decode()


def _env(tmp_path: Path, bootstrap: str, prefix: str, sim: LLMSimulator, **extra: str) -> dict[str, str]:
    env = child_env() | {
        "FERRY_BROKER": bootstrap,
        "FERRY_HOME": str(tmp_path / "home"),
        "FERRY_APP_ID": unique("logs"),
        "FERRY_TOPIC_PREFIX": prefix,
        "FERRY_LLM_BASE_URL": sim.base_url,
        **extra,
    }
    env.pop("FERRY_DATABASE_URL", None)
    env.pop("FERRY_LOG_FORMAT", None)
    return env


def _project(root: Path) -> Path:
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "vault.py").write_text(TOOL_MODULE)
    write_project(root, {"echo": llm_agent(), "keeper": llm_agent(tools=["vault.open_vault"], max_iterations=3)})
    return root


def _vault_rules() -> list[Rule]:
    call = ToolCall(name="open_vault", arguments={"vault": "main", "api_token": TOOL_SECRET})
    return [
        Rule(match=Match(last_user_contains="refuse"), reply=FaultReply(
            fault=FaultKind.AUTH, message=f"Incorrect API key provided: {API_KEY}. Check Authorization: Bearer {API_KEY}",
        )),
        Rule(match=Match(has_tool_result="open_vault"), reply=TextReply(text="The vault is open.")),
        Rule(match=Match(last_user_contains="vault"), reply=ToolCallsReply(calls=[call])),
    ]  # fmt: skip


async def _submit(
    bootstrap: str, project_dir: Path, names: TopicNames, requests: list[RunRequest]
) -> dict[str, RunResult]:
    project = load_project(project_dir)
    async with ResultWatcher(bootstrap, names) as watcher, Submitter(bootstrap, project, names) as submitter:
        for request in requests:
            await submitter.submit(request)
        return await watcher.wait_for([r.run_id for r in requests], timeout=90)


async def test_json_logs_one_line_per_run_and_duplicate_with_the_runs_fields_on_every_line(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    prefix = unique("lg") + "."
    names = TopicNames(prefix)
    project_dir = _project(tmp_path / "project")
    async with LLMSimulator(_vault_rules(), record_requests=False) as sim:
        env = _env(tmp_path, kafka_bootstrap, prefix, sim)
        async with json_worker(project_dir, env) as worker:
            plain = RunRequest.new("echo", {"message": "hello"}, tenant="acme")
            vault = RunRequest.new("keeper", {"message": "open the vault"}, tenant="bank")
            results = await _submit(kafka_bootstrap, project_dir, names, [plain, vault])
            assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
            # The same request again, after its result: a duplicate, skipped and logged.
            await produce(
                kafka_bootstrap, names.request("echo"), [(plain.run_id.encode(), plain.model_dump_json().encode())]
            )
            await wait_for(lambda: b"duplicate_skipped" in worker.err, 60, what="the duplicate's line")

    lines = worker.json_lines()
    spans = [SpanEvent.model_validate_json(v) for v in await collect(kafka_bootstrap, names.traces, 1, timeout=10)]
    spans += [
        SpanEvent.model_validate_json(v)
        for v in await collect(kafka_bootstrap, names.traces, len(spans) + 20, timeout=5)
    ][len(spans) :]
    trace_of = {s.run_id: s.trace_id for s in spans}
    finished = [line for line in lines if line.get("event") == "run_finished"]
    assert sorted(line["run_id"] for line in finished) == sorted([plain.run_id, vault.run_id])
    for request in (plain, vault):
        [line] = [f for f in finished if f["run_id"] == request.run_id]
        result = results[request.run_id]
        assert (line["agent"], line["tenant"], line["status"], line["category"]) == (
            request.agent, request.tenant, "completed", None,
        )  # fmt: skip
        assert line["tokens"] == result.usage.total_tokens > 0
        assert line["trace_id"] == trace_of[request.run_id]
        assert line["level"] == "INFO" and line["logger"] == "ferry.runs"
    [tool_line] = [line for line in lines if line["logger"] == "tools.vault"]  # logged on a tool thread
    assert tool_line["message"] == "opening vault main"
    assert (tool_line["run_id"], tool_line["agent"], tool_line["tenant"]) == (vault.run_id, "keeper", "bank")
    assert tool_line["trace_id"] == trace_of[vault.run_id]
    [duplicate] = [line for line in lines if line.get("event") == "duplicate_skipped"]
    assert (duplicate["run_id"], duplicate["reason"]) == (plain.run_id, "already has a result")
    assert any(line["logger"] == "ferry.worker" and "consuming" in line["message"] for line in lines)


async def test_planted_secrets_appear_in_no_log_result_trace_or_history_row(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    prefix = unique("sec") + "."
    names = TopicNames(prefix)
    project_dir = _project(tmp_path / "project")
    async with LLMSimulator(_vault_rules(), record_requests=True) as sim:
        env = _env(tmp_path, kafka_bootstrap, prefix, sim, OPENAI_API_KEY=API_KEY, FERRY_LLM_API_KEY=API_KEY)
        async with json_worker(project_dir, env) as worker:
            requests = [
                RunRequest.new("keeper", {"message": "open the vault"}),
                RunRequest.new("echo", {"message": "refuse me"}),
            ]
            results = await _submit(kafka_bootstrap, project_dir, names, requests)
            database = tmp_path / "home" / "history.db"
            store = HistoryStore.open(f"sqlite:///{database}", create=False)
            try:
                await wait_for(lambda: store.counts()[0] == 2, 60, what="both runs in the history")
                history = [json.dumps(run.model_dump(mode="json")) for run in store.runs()]
                history += [json.dumps(s.model_dump(mode="json")) for s in store.spans([r.run_id for r in requests])]
            finally:
                store.close()
        recorded = sim.requests

    # The secrets were really in play: the key went out as the Authorization header, the
    # tool got its token, and the provider's refusal quoted the key back.
    assert any(f"Bearer {API_KEY}" in json.dumps(r.headers) for r in recorded)
    assert results[requests[0].run_id].status == RunStatus.COMPLETED
    refused = results[requests[1].run_id]
    assert refused.status == RunStatus.FAILED and refused.error is not None and refused.error.category.value == "auth"
    assert any(TOOL_SECRET in json.dumps(r.body) for r in recorded)

    outputs = {
        "worker log": worker.err.decode(),
        "runs.results": "\n".join(v.decode() for v in await collect(kafka_bootstrap, names.results, 2, timeout=10)),
        "runs.traces": "\n".join(v.decode() for v in await collect(kafka_bootstrap, names.traces, 10**6, timeout=5)),
        "history store": "\n".join(history),
        "history file": (tmp_path / "home" / "history.db").read_bytes().decode("latin-1"),
    }
    assert outputs["runs.traces"] and "[REDACTED]" in outputs["runs.results"] + outputs["runs.traces"]
    for where, text in outputs.items():
        for secret in (API_KEY, TOOL_SECRET):
            assert secret not in text, f"{secret} found in the {where}"
