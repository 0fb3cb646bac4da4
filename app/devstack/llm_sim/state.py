"""What one simulator instance remembers: its rules, sequence progress and observations.

Everything mutable lives here, owned by one `LLMSimulator`, so two simulators in one
test never share anything. All access happens on the simulator's event loop without an
`await` between reading and updating, so no lock is needed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from app.devstack.llm_sim.conversation import Conversation
from app.devstack.llm_sim.rules import Rule, SequenceReply, StepReply


class RecordedRequest(BaseModel):
    """One chat request as received, and what the simulator did with it."""

    number: int
    """1-based arrival order since start/reset (what `Match.request_number` sees)."""
    received_at: float
    model: str
    stream: bool
    body: Any
    headers: dict[str, str]
    rule: str | None = None
    """Label of the rule that answered; None for the default reply."""
    outcome: str = "pending"
    """HTTP status as a string, `connection_reset`, `stream_cut`, or `cancelled` (client gone)."""


class SimStats(BaseModel):
    """A snapshot; `GET /_sim/stats` returns exactly this."""

    calls_total: int = 0
    calls_by_model: dict[str, int] = Field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    rule_hits: dict[str, int] = Field(default_factory=dict)
    default_replies: int = 0
    latency_ms: int = 0
    requests: list[RecordedRequest] = Field(default_factory=list)


@dataclass
class ActiveRule:
    rule: Rule
    label: str
    consumed: int = 0

    def next_reply(self) -> StepReply | None:
        """The reply for this call, consuming a sequence step; None once a fall-through sequence is spent."""
        reply = self.rule.reply
        if not isinstance(reply, SequenceReply):
            return reply
        steps = reply.steps
        index = self.consumed
        if index >= len(steps):
            if reply.when_exhausted == "fall_through":
                return None
            index = len(steps) - 1 if reply.when_exhausted == "repeat_last" else index % len(steps)
        self.consumed += 1
        return steps[index]


@dataclass
class SimState:
    latency_ms: int = 0
    record_requests: bool = True
    rules: list[ActiveRule] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    calls_total: int = 0
    calls_by_model: Counter[str] = field(default_factory=Counter)
    rule_hits: Counter[str] = field(default_factory=Counter)
    default_replies: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    def set_rules(self, rules: Iterable[Rule], append: bool = False) -> None:
        kept = self.rules if append else []
        new = [ActiveRule(rule, rule.name or f"rule{len(kept) + i}") for i, rule in enumerate(rules)]
        self.rules = kept + new

    def clear_observations(self) -> None:
        self.requests = []
        self.calls_total = 0
        self.calls_by_model = Counter()
        self.rule_hits = Counter()
        self.default_replies = 0
        self.peak_in_flight = self.in_flight

    def begin_call(self, model: str, stream: bool, body: Any, headers: dict[str, str]) -> RecordedRequest:
        self.calls_total += 1
        self.calls_by_model[model] += 1
        record = RecordedRequest(
            number=self.calls_total, received_at=time.time(), model=model, stream=stream, body=body, headers=headers
        )
        if self.record_requests:
            self.requests.append(record)
        return record

    def choose(self, conversation: Conversation, record: RecordedRequest) -> tuple[StepReply | None, Rule | None]:
        """First matching rule wins; (None, None) means the documented default reply."""
        for active in self.rules:
            if not conversation.matches(active.rule.match, record.number):
                continue
            reply = active.next_reply()
            if reply is None:
                continue
            self.rule_hits[active.label] += 1
            record.rule = active.label
            return reply, active.rule
        self.default_replies += 1
        return None, None

    @contextmanager
    def tracking_in_flight(self) -> Iterator[None]:
        """Counts a request as in flight until its response is fully written (or the client left)."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1

    def snapshot(self, include_requests: bool = True) -> SimStats:
        return SimStats(
            calls_total=self.calls_total,
            calls_by_model=dict(self.calls_by_model),
            in_flight=self.in_flight,
            peak_in_flight=self.peak_in_flight,
            rule_hits=dict(self.rule_hits),
            default_replies=self.default_replies,
            latency_ms=self.latency_ms,
            requests=[r.model_copy(deep=True) for r in self.requests] if include_requests else [],
        )
