"""What `ferry run` prints around a run: trace lines, summary, hints, the simulator's rules."""

from __future__ import annotations

import io
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.cli.run import no_provider_message, read_sim_rules
from app.cli.run_output import LingeringTools, TracePrinter, summary_line
from app.contracts import RunError, RunRequest, RunResult, RunStatus, SpanEvent, SpanKind, Usage
from app.contracts.errors import BadInputError, ToolTimeoutError
from app.contracts.spans import SpanAttr
from app.devstack.llm_sim import JsonReply
from app.devstack.scenarios.invoice import scenario_applies
from app.project import load_project

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _span(kind: SpanKind, name: str, **attributes: object) -> SpanEvent:
    return SpanEvent(
        run_id="r", trace_id="t", span_id="s", kind=kind, name=name, start=NOW, end=NOW, duration_ms=2.0,
        attributes=attributes,
    )  # fmt: skip


def _line(span: SpanEvent) -> str:
    stream = io.StringIO()
    TracePrinter(stream)(span)
    return stream.getvalue()


def test_a_tool_agent_run_line_has_no_tokens_or_cost() -> None:
    line = _line(
        _span(SpanKind.RUN, "run napper", **{SpanAttr.TOTAL_TOKENS: 0, SpanAttr.COST_USD: 0.0, "tool_calls": 1})
    )
    assert line.startswith("run ") and "tokens" not in line and "cost" not in line


def test_llm_lines_show_tokens_and_money() -> None:
    line = _line(
        _span(SpanKind.LLM_CALL, "llm m", **{SpanAttr.TOTAL_TOKENS: 7, SpanAttr.COST_USD: 0.000031049999999999996})
    )
    assert line.rstrip().endswith("tokens=7 cost=$0.00003105")
    attempt = _line(
        _span(SpanKind.LLM_ATTEMPT, "attempt m", **{SpanAttr.PROMPT_TOKENS: 3, SpanAttr.COMPLETION_TOKENS: 4})
    )
    assert attempt.rstrip().endswith("tokens=7")


def _result(usage: Usage, error: RunError | None = None) -> RunResult:
    status = RunStatus.FAILED if error else RunStatus.COMPLETED
    return RunResult.for_request(
        RunRequest.new("a", {}), status, started_at=NOW, ended_at=NOW, usage=usage, error=error
    )


def test_summary_of_a_tool_agent_leaves_tokens_and_cost_out() -> None:
    error = RunError.from_exception(ToolTimeoutError("nap", 2))
    line = summary_line(_result(Usage(tool_calls=1), error))
    assert line == "failed (tool_timeout: tool 'nap' did not finish within 2s) in 0 ms; 0 LLM call(s), 1 tool call(s)"


def test_summary_prints_cost_as_money() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7, cost_usd=2e-05, llm_calls=1)
    assert summary_line(_result(usage)) == (
        "completed in 0 ms; 7 tokens (3 prompt + 4 completion), cost $0.00002; 1 LLM call(s), 0 tool call(s)"
    )
    unpriced = usage.model_copy(update={"cost_usd": None})
    assert "cost unknown;" in summary_line(_result(unpriced))


def test_waiting_message_names_the_tool_and_its_timeout() -> None:
    lingering = LingeringTools()
    lingering(
        _span(
            SpanKind.TOOL_CALL,
            "tool nap",
            **{SpanAttr.TOOL: "nap", SpanAttr.ERROR_CATEGORY: "tool_timeout", SpanAttr.ERROR_TIMEOUT_SECONDS: 2.0},
        )
    )
    assert lingering.waiting_message(["nap"]) == (
        "waiting for tool `nap` (still running in its thread after its 2s timeout); "
        "Ctrl-C to quit now — use isolation: process to kill such tools"
    )
    assert lingering.waiting_message(["nap", "ocr"]).startswith(
        "waiting for tools `nap` (2s), `ocr` (still running in their threads after their timeouts)"
    )


def test_sim_rules_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"rules": [{"reply": {"kind": "json", "data": {"total": 1}}}]}')
    (rule,) = read_sim_rules(path)
    assert rule.reply == JsonReply(data={"total": 1})
    path.write_text('[{"reply": {"kind": "text", "text": "hi"}}]')  # a bare list, as the simulator accepts
    assert len(read_sim_rules(path)) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read it (No such file or directory)"),
        ('{"rules": [', "is not JSON: Expecting value: line 1 column 12"),
        ('"rules"', 'expected {"rules": [...]} or a list of rules'),
        (
            '{"rules": [{"match": {"modle": "m"}, "reply": {"kind": "text", "text": "x"}}]}',
            "is not a valid rules file: rules.0.match.modle: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_sim_rules_file_names_file_and_reason(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "rules.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BadInputError) as caught:
        read_sim_rules(path)
    assert str(path) in caught.value.message and reason in caught.value.message


def _project(tmp_path: Path, agent_yaml: str, schema: bool = False) -> Path:
    (tmp_path / "agents").mkdir(parents=True)
    (tmp_path / "agents" / "invoice-extractor.yaml").write_text(agent_yaml)
    if schema:
        (tmp_path / "schemas").mkdir()
        (tmp_path / "schemas" / "thing.json").write_text('{"type": "object"}')
    return tmp_path


AGENT = textwrap.dedent(
    """\
    version: "1.0"
    name: invoice-extractor
    description: someone else's extractor
    model: openai/gpt-4o-mini
    system_prompt: Extract.
    """
)


def test_the_invoice_scenario_applies_to_the_example_project_only(tmp_path: Path) -> None:
    assert scenario_applies(load_project(ROOT))
    assert not scenario_applies(load_project(_project(tmp_path, AGENT)))


def test_missing_key_hint_fits_the_agent(tmp_path: Path) -> None:
    example = no_provider_message(load_project(ROOT), "invoice-pipeline", ["GEMINI_API_KEY"])
    assert "add --sim to answer with the LLM simulator's scripted invoice scenario" in example

    plain = no_provider_message(load_project(_project(tmp_path / "a", AGENT)), "invoice-extractor", ["OPENAI_API_KEY"])
    assert plain.startswith("no provider key for the models of 'invoice-extractor' (missing: OPENAI_API_KEY)")
    assert "add --sim to answer every call with the LLM simulator's generic reply" in plain

    schema_project = _project(tmp_path / "b", AGENT + "output_schema: thing\n", schema=True)
    with_schema = no_provider_message(load_project(schema_project), "invoice-extractor", ["OPENAI_API_KEY"])
    assert "--sim-rules FILE" in with_schema and "which no output schema accepts" in with_schema
    assert "add --sim " not in with_schema
