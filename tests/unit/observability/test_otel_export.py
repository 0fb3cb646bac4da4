"""OTLP export: off (and not even imported) without an endpoint; with one, a run's spans
reach a collector with the GenAI semantic-convention names, redacted as runs.traces is."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from opentelemetry.semconv._incubating.attributes import error_attributes as error_semconv
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as semconv

from app.contracts import RunRequest, SpanKind
from app.contracts.errors import AuthError, ConfigError
from app.contracts.spans import GenAIAttr, SpanAttr
from app.contracts.trace_context import TraceContext
from app.engine import Engine, EngineSettings
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.observability.otel_export import export_enabled, genai_attributes, service_resource, split_model
from app.observability.redaction import Redactor
from app.observability.tracing import EngineTracing
from app.project import load_project
from tests.unit.observability.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[3]
OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_genai_names_are_the_semantic_conventions() -> None:
    assert GenAIAttr.OPERATION_NAME == semconv.GEN_AI_OPERATION_NAME
    assert GenAIAttr.PROVIDER_NAME == semconv.GEN_AI_PROVIDER_NAME
    assert GenAIAttr.SYSTEM == semconv.GEN_AI_SYSTEM
    assert GenAIAttr.REQUEST_MODEL == semconv.GEN_AI_REQUEST_MODEL
    assert GenAIAttr.RESPONSE_MODEL == semconv.GEN_AI_RESPONSE_MODEL
    assert GenAIAttr.INPUT_TOKENS == semconv.GEN_AI_USAGE_INPUT_TOKENS
    assert GenAIAttr.OUTPUT_TOKENS == semconv.GEN_AI_USAGE_OUTPUT_TOKENS
    assert GenAIAttr.AGENT_NAME == semconv.GEN_AI_AGENT_NAME
    assert GenAIAttr.TOOL_NAME == semconv.GEN_AI_TOOL_NAME
    assert GenAIAttr.TOOL_CALL_ID == semconv.GEN_AI_TOOL_CALL_ID
    assert GenAIAttr.TOOL_TYPE == semconv.GEN_AI_TOOL_TYPE
    assert GenAIAttr.ERROR_TYPE == error_semconv.ERROR_TYPE
    operations = {op.value for op in semconv.GenAiOperationNameValues}
    assert {"invoke_agent", "chat", "execute_tool"} <= operations


def test_genai_attributes_of_each_kind() -> None:
    llm = {SpanAttr.MODEL: "anthropic/claude-x", SpanAttr.PROMPT_TOKENS: 12, SpanAttr.COMPLETION_TOKENS: 5}
    assert genai_attributes(SpanKind.LLM_CALL, llm) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-x",
        "gen_ai.response.model": "claude-x",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
    }
    failed = genai_attributes(SpanKind.LLM_ATTEMPT, {SpanAttr.MODEL: "gpt-4o", SpanAttr.ERROR_CATEGORY: "rate_limit"})
    assert failed == {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "error.type": "rate_limit"}
    assert genai_attributes(SpanKind.TOOL_CALL, {SpanAttr.TOOL: "add", SpanAttr.TOOL_CALL_ID: "c1"}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "add",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": "c1",
    }
    assert genai_attributes(SpanKind.RUN, {SpanAttr.AGENT: "a", SpanAttr.PROMPT_TOKENS: 3}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "a",
        "gen_ai.usage.input_tokens": 3,
    }
    assert genai_attributes(SpanKind.RETRY_WAIT, {SpanAttr.WAIT_SECONDS: 1.0}) == {}
    assert split_model("bedrock/anthropic.claude") == ("aws.bedrock", "anthropic.claude")
    assert split_model("vertex_ai/gemini-pro") == ("gcp.vertex_ai", "gemini-pro")
    assert split_model("sim-model") == (None, "sim-model")


def test_export_is_on_only_with_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not export_enabled() and not EngineTracing(Redactor()).exporting
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert export_enabled()
    tracing = EngineTracing(Redactor())
    assert tracing.exporting
    tracing.shutdown()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not export_enabled()
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9/v1/traces")
    assert export_enabled()


def test_an_unsupported_protocol_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ConfigError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported.*http/protobuf"):
        EngineTracing(Redactor())


def test_the_service_name_defaults_to_ferry_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    assert service_resource().attributes["service.name"] == "ferry-worker"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment.environment=prod")
    assert service_resource().attributes["service.name"] == "from-attrs"
    assert service_resource().attributes["deployment.environment"] == "prod"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-agents")
    assert service_resource().attributes["service.name"] == "billing-agents"


def test_without_an_endpoint_no_exporter_is_imported(tmp_path: Path) -> None:
    """In a clean interpreter: an engine that ran a traced run loaded no exporter module,
    nor the SDK (its spans were recorded without it)."""
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        from app.contracts import RunRequest
        from app.engine import Engine, EngineSettings
        from app.engine.testing import FunctionLLM
        from app.project import load_project

        async def main():
            engine = Engine(load_project({str(ROOT)!r}), settings=EngineSettings(), llm=FunctionLLM(lambda r: "ok"))
            spans = []
            await engine.run(RunRequest.new("invoice-validator", "x"), on_span=spans.append)
            await engine.aclose()
            loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.exporter", "opentelemetry.proto", "google.protobuf", "opentelemetry.sdk")))
            print(json.dumps({{"spans": len(spans), "loaded": loaded}}))

        asyncio.run(main())
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["spans"] >= 2 and report["loaded"] == []


def _write_project(root: Path) -> None:
    (root / "agents").mkdir()
    (root / "tools").mkdir()
    (root / "tools" / "t.py").write_text(
        textwrap.dedent(
            '''
            def add(a: int, b: int) -> int:
                """Add."""
                return a + b
            '''
        )
    )
    agent = {
        "version": "1.0",
        "name": "adder",
        "description": "d",
        "model": "openai/sim-model",
        "system_prompt": "s",
        "tools": ["t.add"],
        "retry_options": {"attempts": 1},
    }
    (root / "agents" / "adder.yaml").write_text(yaml.safe_dump(agent))


async def test_a_runs_spans_reach_the_collector_with_genai_names_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "tok-5e5e5e5e5e5e"
    monkeypatch.setenv("FERRY_TEST_SERVICE_TOKEN", secret)
    _write_project(tmp_path)
    project = load_project(tmp_path)
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[tool_call("add", {"a": 1, "b": 2})]),
            "3",
            AuthError(f"Incorrect API key provided: {secret} (Authorization: Bearer sk-live-0123456789)"),
        ]
    )
    async with OtlpReceiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=abc123")
        engine = Engine(project, settings=EngineSettings(retry_jitter=0.0), llm=llm)
        parent = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
        ok = await engine.run(RunRequest.new("adder", "1+2"), trace_context=parent)
        failed = await engine.run(RunRequest.new("adder", f"use {secret}"))
        await engine.aclose()  # flushes the last batch
        spans = collector.spans
    assert len(collector.bodies) < len(spans)  # batched, not one request per span
    assert ok.status.value == "completed" and failed.error is not None and failed.error.category.value == "auth"
    assert {s.resource["service.name"] for s in spans} == {"ferry-worker"}
    assert collector.headers[0]["x-collector-token"] == "abc123"  # OTEL_EXPORTER_OTLP_HEADERS, read by the exporter
    first = [s for s in spans if s.attributes["ferry.run_id"] == ok.run_id]
    assert {s.trace_id for s in first} == {parent.trace_id}
    run = next(s for s in first if s.attributes["ferry.kind"] == "run")
    assert run.parent_span_id == parent.span_id
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent" and run.attributes["gen_ai.agent.name"] == "adder"
    assert run.attributes["gen_ai.usage.input_tokens"] == ok.usage.prompt_tokens > 0
    assert run.attributes["gen_ai.usage.output_tokens"] == ok.usage.completion_tokens > 0
    assert run.attributes["agent"] == "adder" and run.attributes["llm.total_tokens"] == ok.usage.total_tokens  # Ferry's
    calls = [s for s in first if s.attributes["ferry.kind"] == "llm_call"]
    assert len(calls) == 2
    for call in calls:
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.provider.name"] == call.attributes["gen_ai.system"] == "openai"
        assert call.attributes["gen_ai.request.model"] == call.attributes["gen_ai.response.model"] == "sim-model"
        assert call.attributes["gen_ai.usage.input_tokens"] == call.attributes["llm.prompt_tokens"]
        assert call.attributes["gen_ai.usage.output_tokens"] == call.attributes["llm.completion_tokens"]
    attempts = [s for s in first if s.attributes["ferry.kind"] == "llm_attempt"]
    assert attempts and all(s.kind == 3 for s in attempts)  # SPAN_KIND_CLIENT: the call to the provider
    tool = next(s for s in first if s.attributes["ferry.kind"] == "tool_call")
    assert tool.attributes["gen_ai.tool.name"] == "add" and tool.attributes["gen_ai.operation.name"] == "execute_tool"
    second = [s for s in spans if s.attributes["ferry.run_id"] == failed.run_id]
    failed_attempt = next(s for s in second if s.attributes["ferry.kind"] == "llm_attempt")
    assert failed_attempt.attributes["error.type"] == "auth"
    assert {s.trace_id for s in second} != {parent.trace_id}
    received = b"".join(collector.bodies)
    for leaked in (secret, "sk-live-0123456789"):
        assert leaked.encode() not in received
    assert b"[REDACTED]" in received
