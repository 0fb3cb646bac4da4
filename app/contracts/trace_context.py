"""W3C trace context (`traceparent`, `tracestate`): where a run sits in a wider trace.

It travels beside a request, never inside it: in the Kafka record headers of a run
request (the streams layer reads and writes them) and as a plain value handed to
`Engine.run`, whose run span then continues that trace instead of starting one. So a
pipeline whose stages run on different workers is one trace, and a caller that traces
its own work sees Ferry's runs under its span.

    traceparent: 00-<trace id, 32 hex>-<parent span id, 16 hex>-<flags, 2 hex>

A header that does not parse is ignored (the W3C rule): the run starts a new trace
rather than failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"

_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?$")
_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16
_MAX_TRACESTATE = 512  # W3C: a vendor may drop a longer tracestate rather than truncate it
_SAMPLED = 0x01


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The span a run continues: its trace id, its span id (the run span's parent), the
    sampled flag and the opaque vendor `tracestate`, passed on unchanged."""

    trace_id: str
    span_id: str
    sampled: bool = True
    tracestate: str | None = None

    @classmethod
    def parse(cls, traceparent: str | None, tracestate: str | None = None) -> TraceContext | None:
        """The context of a `traceparent` header, or None when it is missing or malformed."""
        if not traceparent:
            return None
        match = _TRACEPARENT_RE.match(traceparent.strip())
        if match is None:
            return None
        version, trace_id, span_id, flags, rest = match.groups()
        # Version ff is forbidden; version 00 has exactly four fields. Later versions may add
        # fields after these four, which a version 00 reader ignores.
        if version == "ff" or (version == "00" and rest):
            return None
        if trace_id == _INVALID_TRACE_ID or span_id == _INVALID_SPAN_ID:
            return None
        state = tracestate.strip() if tracestate else None
        if state is not None and (not state or len(state) > _MAX_TRACESTATE):
            state = None
        return cls(trace_id, span_id, bool(int(flags, 16) & _SAMPLED), state)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{_SAMPLED if self.sampled else 0:02x}"

    def child(self, span_id: str) -> TraceContext:
        """The context a step started under this one hands on: same trace, same tracestate."""
        return TraceContext(self.trace_id, span_id, self.sampled, self.tracestate)
