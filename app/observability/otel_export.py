"""Spans to any OpenTelemetry collector over OTLP/HTTP, when the standard variables say where.

    OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)   on when set
    OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL     http/protobuf (the only one shipped)
    OTEL_EXPORTER_OTLP_[TRACES_]HEADERS / _TIMEOUT / _COMPRESSION / _CERTIFICATE …
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES   (service.name defaults to ferry-worker)
    OTEL_BSP_*                                   batching (BatchSpanProcessor)
    OTEL_TRACES_EXPORTER=none                    off, whatever the endpoint

The official exporter (`opentelemetry-exporter-otlp-proto-http`) reads its variables
itself; nothing of it is imported or built while no endpoint is set, so tracing that
goes nowhere costs nothing. Spans are batched off the event loop and flushed when the
engine closes (a worker's stop).

What leaves the process is what `runs.traces` gets, redacted by the same `Redactor`,
plus the GenAI semantic-convention attributes (`GenAIAttr`) derived from Ferry's own, so
a collector's GenAI views read model, tokens and tools without knowing Ferry. Redaction
and the derivation happen on the exporter's thread, not on the run's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.contracts.errors import ConfigError
from app.contracts.spans import GenAIAttr, SpanAttr, SpanKind
from app.observability.redaction import Redactor

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor

DEFAULT_SERVICE_NAME = "ferry-worker"
KIND_ATTRIBUTE = "ferry.kind"  # set on every span by the engine's tracing: which step it is
RUN_ID_ATTRIBUTE = "ferry.run_id"  # likewise: the run a span belongs to

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_SUPPORTED_PROTOCOL = "http/protobuf"

# litellm's provider prefixes → the semantic conventions' well-known provider names.
_PROVIDERS = {
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "watsonx": "ibm.watsonx.ai",
    "xai": "x_ai",
}
_OPERATIONS = {
    SpanKind.RUN: "invoke_agent",
    SpanKind.PIPELINE_STEP: "invoke_agent",
    SpanKind.LLM_CALL: "chat",
    SpanKind.LLM_ATTEMPT: "chat",
    SpanKind.TOOL_CALL: "execute_tool",
}


@dataclass(frozen=True)
class OtlpExport:
    """What an engine's tracer provider needs to export: its processor and its resource."""

    processor: SpanProcessor
    resource: Resource


def export_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in _ENDPOINTS)


def otlp_export(redactor: Redactor) -> OtlpExport | None:
    """The batching OTLP/HTTP export the environment asks for, or None (nothing imported).

    Raises `ConfigError` for a protocol this build cannot speak."""
    if not export_enabled():
        return None
    protocol = next((os.environ[n].strip() for n in _PROTOCOLS if os.environ.get(n, "").strip()), _SUPPORTED_PROTOCOL)
    if protocol != _SUPPORTED_PROTOCOL:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: Ferry exports over OTLP/HTTP "
            f"({_SUPPORTED_PROTOCOL}); unset it, or set it to {_SUPPORTED_PROTOCOL} and point "
            "OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318 by default)"
        )
    # Imported here only: a process that exports nothing never loads the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from app.observability.otel_sdk import FerryExporter

    exporter = FerryExporter(OTLPSpanExporter(), redactor)
    return OtlpExport(BatchSpanProcessor(exporter), service_resource())


def service_resource() -> Resource:
    """The resource of exported spans: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME as the
    SDK reads them, with `ferry-worker` as the service name when neither names one."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create()
    name = str(resource.attributes.get(SERVICE_NAME, ""))
    if not name or name.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def genai_attributes(kind: SpanKind | None, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The GenAI semantic-convention attributes of a Ferry span of `kind`, from its own."""
    derived: dict[str, Any] = {}
    operation = _OPERATIONS.get(kind) if kind is not None else None
    if operation is not None:
        derived[GenAIAttr.OPERATION_NAME] = operation
    failed = attributes.get(SpanAttr.ERROR_CATEGORY)
    if failed is not None:
        derived[GenAIAttr.ERROR_TYPE] = failed
    if kind in (SpanKind.RUN, SpanKind.PIPELINE_STEP) and attributes.get(SpanAttr.AGENT) is not None:
        derived[GenAIAttr.AGENT_NAME] = attributes[SpanAttr.AGENT]
    if kind in (SpanKind.LLM_CALL, SpanKind.LLM_ATTEMPT) and isinstance(attributes.get(SpanAttr.MODEL), str):
        provider, name = split_model(attributes[SpanAttr.MODEL])
        if provider is not None:
            derived[GenAIAttr.PROVIDER_NAME] = derived[GenAIAttr.SYSTEM] = provider
        derived[GenAIAttr.REQUEST_MODEL] = name
        if failed is None:
            derived[GenAIAttr.RESPONSE_MODEL] = name  # on success `model` is the model that answered
    if kind is SpanKind.TOOL_CALL and attributes.get(SpanAttr.TOOL) is not None:
        derived[GenAIAttr.TOOL_NAME] = attributes[SpanAttr.TOOL]
        derived[GenAIAttr.TOOL_TYPE] = "function"
        if attributes.get(SpanAttr.TOOL_CALL_ID) is not None:
            derived[GenAIAttr.TOOL_CALL_ID] = attributes[SpanAttr.TOOL_CALL_ID]
    if attributes.get(SpanAttr.PROMPT_TOKENS) is not None:
        derived[GenAIAttr.INPUT_TOKENS] = attributes[SpanAttr.PROMPT_TOKENS]
    if attributes.get(SpanAttr.COMPLETION_TOKENS) is not None:
        derived[GenAIAttr.OUTPUT_TOKENS] = attributes[SpanAttr.COMPLETION_TOKENS]
    return derived


def split_model(model: str) -> tuple[str | None, str]:
    """`openai/gpt-4o-mini` → ("openai", "gpt-4o-mini"); a bare name has no provider."""
    prefix, slash, name = model.partition("/")
    if not slash or not name:
        return None, model
    return _PROVIDERS.get(prefix, prefix), name


def span_kind(value: Any) -> SpanKind | None:
    """The Ferry kind a span's `ferry.kind` attribute names, if any."""
    try:
        return SpanKind(str(value))
    except ValueError:
        return None
