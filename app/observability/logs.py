"""Worker logs: one stderr handler, the run's identity on every line logged during a run.

    configure_logging("json")                 once, at process start
    set_run_fields(run_id, agent, tenant)     in the task of one run (the worker's lanes)
    with run_fields(run_id, agent, tenant):   around a block of one run

The fields of the run being executed live in a context variable, set around each run:
asyncio copies it into the run's tasks (the engine into its tool threads), so runs that
interleave on one loop never see each other's fields and nothing process-wide changes
per run. A `logging.Filter` on the handler copies them onto each record, so every
logger's lines get them — Ferry's, faust's, a tool's own `logging` calls.

`--log-format text` (the default) is a line for people, `json` one object per line for
a log pipeline: time, level, logger, message, then `run_id`, `agent`, `tenant` and
`trace_id` on every line of a run, then the fields of the event (a finished run's status,
tokens, cost…). Both formatters pass every line through the `Redactor` built from the
environment at start, so an API key or a bearer token quoted in an exception message is
masked before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from opentelemetry import trace

from app.observability.redaction import Redactor

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final = ("text", "json")
LOG_FORMAT_ENV: Final = "FERRY_LOG_FORMAT"

#: The identity fields a line of a run carries, in the order a JSON line shows them.
RUN_KEYS: Final = ("run_id", "agent", "tenant", "trace_id")
#: `extra={EVENT_FIELDS: {...}}`: structured fields of an event line (merged into a JSON line).
EVENT_FIELDS: Final = "ferry_fields"

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The record attributes logging itself sets: anything else on a record came from `extra`.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


@dataclass(slots=True)
class RunFields:
    """Who a line belongs to. `trace_id` is filled in once the run's first span is known."""

    run_id: str
    agent: str
    tenant: str
    trace_id: str | None = None


_current_run: ContextVar[RunFields | None] = ContextVar("ferry_run_fields", default=None)


@contextmanager
def run_fields(run_id: str, agent: str, tenant: str) -> Iterator[RunFields]:
    """Every line logged inside the block (in this task, its child tasks, and threads the
    engine hands its context to) carries these fields."""
    fields = RunFields(run_id, agent, tenant)
    token = _current_run.set(fields)
    try:
        yield fields
    finally:
        _current_run.reset(token)


def set_run_fields(run_id: str, agent: str, tenant: str) -> RunFields:
    """For the rest of the calling task (and what it starts): for a task that is one run."""
    fields = RunFields(run_id, agent, tenant)
    _current_run.set(fields)
    return fields


def current_run() -> RunFields | None:
    return _current_run.get()


def _current_trace_id() -> str | None:
    """The trace of the span open where the line is logged (the engine's run or a step)."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class RunContextFilter(logging.Filter):
    """Copies the current run's fields onto each record; `extra=` given by the caller wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _current_run.get()
        if fields is None:
            return True
        if fields.trace_id is None:
            fields.trace_id = _current_trace_id()
        for key in RUN_KEYS:
            if key not in record.__dict__:
                setattr(record, key, getattr(fields, key))
        return True


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger>: <message>`, a line of a run ending in `[run_id=… agent=… tenant=…]`
    unless it is one of the run's own event lines (which name them already); redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(_TEXT_FORMAT)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        run_id = record.__dict__.get("run_id")
        if run_id is not None and EVENT_FIELDS not in record.__dict__:
            line = (
                f"{line} [run_id={run_id} agent={record.__dict__.get('agent')} tenant={record.__dict__.get('tenant')}]"
            )
        return self._redactor.text(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time`, `level`, `logger`, `message`, the run's fields,
    the event's fields, then `exception` when the record has one; strings redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        redact = self._redactor
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact.text(record.getMessage()),
        }
        attributes = record.__dict__
        for key in RUN_KEYS:
            value = attributes.get(key)
            if value is not None:
                line[key] = value
        event = attributes.get(EVENT_FIELDS)
        if isinstance(event, Mapping):  # Ferry's own fields: only their text can hold a secret
            line.update({k: redact.text(v) if isinstance(v, str) else v for k, v in event.items()})
        extra = {
            key: value
            for key, value in attributes.items()
            if key not in _RESERVED and key not in line and key not in RUN_KEYS and key != EVENT_FIELDS
        }
        if extra:  # a caller's `extra=`: a key that names a secret is masked whole
            line.update(redact.mapping(extra))
        if record.exc_info:
            line["exception"] = redact.text(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact.text(record.exc_text)
        if record.stack_info:
            line["stack"] = redact.text(self.formatStack(record.stack_info))
        return json.dumps(line, default=str, ensure_ascii=False)


def resolve_log_format(explicit: str | None, environ: Mapping[str, str]) -> LogFormat:
    """`--log-format`, else `$FERRY_LOG_FORMAT`, else text; anything else is a `ValueError`."""
    value = (explicit or environ.get(LOG_FORMAT_ENV) or "text").strip().lower()
    if value == "text":
        return "text"
    if value == "json":
        return "json"
    raise ValueError(value)


def configure_logging(
    log_format: LogFormat = "text",
    *,
    ferry_level: int = logging.WARNING,
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Logging of a Ferry process, done once at its start: one handler on stderr for every
    logger, all at WARNING but the `ferry.*` loggers (run lines, the worker's own status),
    which log from `ferry_level` on. (`app.*` stays at WARNING: faust names its loggers
    after the module that subclasses its App, so its start-up chatter would come too.)"""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RunContextFilter())
    redact = redactor if redactor is not None else Redactor.from_environment()
    handler.setFormatter(JsonFormatter(redact) if log_format == "json" else TextFormatter(redact))
    # No line shows the process or multiprocessing names: not looking them up spares every record.
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("ferry").setLevel(ferry_level)
    return handler
