"""Worker log lines as an operator reads them: JSON objects carrying the run's identity on
every line of a run (and only then), runs interleaving on one loop never mixing fields,
one line per finished run and per duplicate, and no secret in any line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from app.contracts import RunError, RunRequest, RunResult, RunStatus, SpanEvent, SpanKind, Usage
from app.contracts.errors import ErrorCategory
from app.observability.logs import (
    JsonFormatter,
    RunContextFilter,
    TextFormatter,
    resolve_log_format,
    run_fields,
    set_run_fields,
)
from app.observability.redaction import Redactor
from app.observability.run_observer import RunObserver

ROOT = Path(__file__).resolve().parents[3]
SECRET = "sk-planted-abcdef0123456789"
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


def _capture(formatter: logging.Formatter) -> Iterator[Captured]:
    """A handler as `configure_logging` installs it, on a test logger (the root stays pytest's)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(formatter)
    loggers = [logging.getLogger(name) for name in ("ferry", "tests.tool")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield Captured(stream)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


@pytest.fixture
def json_lines() -> Iterator[Captured]:
    yield from _capture(JsonFormatter(Redactor([SECRET])))


@pytest.fixture
def text_lines() -> Iterator[Captured]:
    yield from _capture(TextFormatter(Redactor([SECRET])))


def _result(status: RunStatus = RunStatus.COMPLETED, **fields: Any) -> RunResult:
    request = RunRequest.new("echo", {"message": "hi"}, tenant="acme")
    return RunResult.for_request(request, status, started_at=NOW, ended_at=NOW + timedelta(milliseconds=1500), **fields)


def test_lines_of_a_run_carry_its_fields_and_trace_and_others_do_not(json_lines: Captured) -> None:
    tool_log = logging.getLogger("tests.tool")
    tool_log.info("before any run")
    tracer = TracerProvider().get_tracer("test")
    with run_fields("run-1", "echo", "acme"), tracer.start_as_current_span("run echo") as span:
        tool_log.warning("inside the run")
    tool_log.info("after the run")
    before, inside, after = json_lines.json()
    assert set(before) == set(after) == {"time", "level", "logger", "message"}
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert inside | {"time": None} == {
        "time": None, "level": "WARNING", "logger": "tests.tool", "message": "inside the run",
        "run_id": "run-1", "agent": "echo", "tenant": "acme", "trace_id": trace_id,
    }  # fmt: skip
    assert inside["time"].endswith("Z") and datetime.fromisoformat(inside["time"])


async def test_runs_interleaving_on_one_loop_never_mix_their_fields(json_lines: Captured) -> None:
    tool_log = logging.getLogger("tests.tool")
    turn = asyncio.Event()

    async def run(run_id: str, first: bool) -> None:
        set_run_fields(run_id, "echo", f"tenant-{run_id}")  # as the lane's task of one run does
        if not first:
            await turn.wait()
        tool_log.info("step 1 of %s", run_id)
        turn.set()
        await asyncio.sleep(0)
        tool_log.info("step 2 of %s", run_id)

    await asyncio.gather(run("a", True), run("b", False))
    lines = json_lines.json()
    assert len(lines) == 4
    for line in lines:
        assert line["message"].endswith(f"of {line['run_id']}")
        assert line["tenant"] == f"tenant-{line['run_id']}"
    logging.getLogger("tests.tool").info("outside")  # the test's own task never had run fields
    assert "run_id" not in json_lines.json()[-1]


def test_one_line_per_finished_run_with_cost_as_money(json_lines: Captured, text_lines: Captured) -> None:
    observer = RunObserver()
    usage = Usage(prompt_tokens=800, completion_tokens=103, total_tokens=903, cost_usd=0.0007483, llm_calls=1)
    observer.finished(_result(usage=usage))
    error = RunError(category=ErrorCategory.RATE_LIMIT, message="Rate limit reached")
    observer.finished(_result(RunStatus.FAILED, error=error, usage=Usage(cost_usd=None)))
    done, failed = json_lines.json()
    assert done["level"] == "INFO" and done["logger"] == "ferry.runs"
    assert (done["agent"], done["tenant"], done["status"], done["category"]) == ("echo", "acme", "completed", None)
    assert (done["duration_ms"], done["tokens"], done["input_tokens"], done["output_tokens"]) == (1500, 903, 800, 103)
    assert (done["cost_usd"], done["cost"]) == (0.0007483, "$0.0007483")
    assert failed["level"] == "WARNING"
    assert (failed["status"], failed["category"], failed["cost"]) == ("failed", "rate_limit", "n/a")
    assert failed["error"] == "Rate limit reached"
    text_done, text_failed = text_lines.lines()
    assert f"run finished: run_id={done['run_id']} agent=echo tenant=acme status=completed category=-" in text_done
    assert text_done.endswith("duration=1.50s tokens=903 cost=$0.0007483")
    assert text_failed.endswith(
        "status=failed category=rate_limit duration=1.50s tokens=0 cost=n/a error: Rate limit reached"
    )


def test_a_skipped_duplicate_is_one_line(json_lines: Captured) -> None:
    request = RunRequest.new("echo", {"message": "hi"}, tenant="acme")
    RunObserver().duplicate(request, "agent.echo.requests[2]@17", "already has a result")
    [line] = json_lines.json()
    assert line["message"] == (
        f"duplicate skipped: run_id={request.run_id} agent=echo tenant=acme "
        "record=agent.echo.requests[2]@17 reason=already has a result"
    )
    assert (line["run_id"], line["event"], line["record"]) == (
        request.run_id,
        "duplicate_skipped",
        "agent.echo.requests[2]@17",
    )


def test_the_sink_of_a_run_taps_spans_and_names_the_trace_of_its_later_lines(json_lines: Captured) -> None:
    forwarded: list[SpanEvent] = []
    request = RunRequest.new("echo", {"message": "hi"}, tenant="acme")

    async def one_run() -> None:
        sink = RunObserver().started(request, forwarded.append)
        assert sink is not None
        event = SpanEvent(
            run_id=request.run_id, trace_id="ab" * 16, span_id="1" * 16, kind=SpanKind.RUN, name="run echo",
            start=NOW, end=NOW, duration_ms=0.0,
        )  # fmt: skip
        sink(event)
        RunObserver().finished(_result())

    asyncio.run(one_run())
    assert len(forwarded) == 1
    assert json_lines.json()[0]["trace_id"] == "ab" * 16
    assert RunObserver().started(request, None) is None  # neither traces nor metrics: no span wanted


def test_no_secret_reaches_a_line_in_either_format(json_lines: Captured, text_lines: Captured) -> None:
    log = logging.getLogger("tests.tool")
    try:
        raise RuntimeError(f"provider said: Incorrect API key provided: {SECRET}")
    except RuntimeError:
        log.exception("call failed with Authorization: Bearer %s", SECRET)
    log.info("payload", extra={"api_key": "not-in-env-but-named-secret", "note": f'quote " and {SECRET}'})
    assert SECRET not in json_lines.stream.getvalue() and SECRET not in text_lines.stream.getvalue()
    failed, payload = json_lines.json()  # still valid JSON after masking
    assert "[REDACTED]" in failed["message"] and "[REDACTED]" in failed["exception"]
    assert payload["api_key"] == "[REDACTED]" and payload["note"] == 'quote " and [REDACTED]'
    assert "Traceback" in text_lines.stream.getvalue()


def test_the_log_format_comes_from_the_option_then_the_environment() -> None:
    assert resolve_log_format(None, {}) == "text"
    assert resolve_log_format(None, {"FERRY_LOG_FORMAT": "JSON"}) == "json"
    assert resolve_log_format("text", {"FERRY_LOG_FORMAT": "json"}) == "text"
    with pytest.raises(ValueError):
        resolve_log_format(None, {"FERRY_LOG_FORMAT": "yaml"})


def test_a_bad_ferry_log_format_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FERRY_LOG_FORMAT": "yaml", "FERRY_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--project", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "ferry: FERRY_LOG_FORMAT=yaml is not a log format — fix: set it to text or json"


def test_the_redactors_quick_checks_never_skip_a_pattern_that_would_match() -> None:
    """Every line pays `Redactor.text`; it runs a pattern only where a substring it needs is
    present. On texts near each pattern's edges it must mask exactly what the patterns do."""
    from app.observability import redaction

    def by_patterns_alone(value: str) -> str:
        value = redaction._PATTERNS[0].sub(f"Bearer {redaction.REDACTED}", value)
        value = redaction._PATTERNS[1].sub(redaction.REDACTED, value)
        return redaction._PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{redaction.REDACTED}", value)

    texts = [
        "Authorization: Bearer abc.def-ghi", "BEARER    zzzzzzzz", "bearer x", "sk-abcdefgh12", "ask-abcdefghij",
        "SK-abcdefghijk", "API_KEY=hunter2x", "api-key : hunter2x", "ApiKey:\n\t abcd1234", "token=abcd", "tokens=7",
        "TOKEN :  wxyz1234", "password:abcd, next", "secret = 'quoted'", "keys: none", "monkey=banana12",
        "no secrets here at all", "mixed token=abcd1234 and Bearer qwertyuiop and sk-0123456789ab",
        "key" + " " * 200 + "= far-away-value",
    ]  # fmt: skip
    redactor = Redactor()
    for text in texts:
        assert redactor.text(text) == by_patterns_alone(text), text
