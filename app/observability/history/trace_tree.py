"""A run's steps as a tree: its spans nested by parent, a pipeline's stage runs under it.

    RunTrace(root run)
     ├── roots: run span ─┬─ llm_call ─┬─ llm_attempt …
     │                    │            └─ retry_wait
     │                    └─ tool_call
     └── stages: RunTrace(stage 0), RunTrace(stage 1), …   (found by root run id)

A span whose parent is not stored (lost on the way: trace events are best effort) is
shown as a root rather than dropped. Built from the store only, never from Kafka.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.observability.history.projection import PIPELINE
from app.observability.history.queries import AmbiguousRunId
from app.observability.history.records import RunRecord, SpanRecord
from app.observability.history.store import HistoryStore


@dataclass
class SpanNode:
    span: SpanRecord
    children: list[SpanNode] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {**self.span.model_dump(mode="json"), "children": [c.as_json() for c in self.children]}


@dataclass
class RunTrace:
    run_id: str
    run: RunRecord | None  # None: spans stored but no result (yet)
    roots: list[SpanNode]
    stages: list[RunTrace] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run": self.run.model_dump(mode="json") if self.run else None,
            "spans": [root.as_json() for root in self.roots],
            "stages": [stage.as_json() for stage in self.stages],
        }


def span_tree(spans: Sequence[SpanRecord]) -> list[SpanNode]:
    """Spans nested by parent id, siblings in start order."""
    ordered = sorted(spans, key=lambda s: (s.start_time, s.end_time, s.span_id))
    nodes = {span.span_id: SpanNode(span) for span in ordered}
    roots: list[SpanNode] = []
    for span in ordered:
        node = nodes[span.span_id]
        parent = nodes.get(span.parent_span_id) if span.parent_span_id else None
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)
    return roots


def load_trace(store: HistoryStore, run_id: str) -> RunTrace | None:
    """The trace of a run given by id or unique id prefix; None when nothing is stored.

    Raises `AmbiguousRunId` when a prefix matches several runs."""
    run = store.run(run_id)
    if run is None:
        with_spans = store.span_run_ids(run_id)
        if not with_spans:
            return None
        if len(with_spans) > 1:
            raise AmbiguousRunId(run_id, with_spans)
        return RunTrace(with_spans[0], None, span_tree(store.spans(with_spans)))
    stages = store.runs_of_root(run.run_id) if run.kind == PIPELINE else []
    spans = store.spans([run.run_id, *(stage.run_id for stage in stages)])
    by_run: dict[str, list[SpanRecord]] = {}
    for span in spans:
        by_run.setdefault(span.run_id, []).append(span)
    return RunTrace(
        run.run_id,
        run,
        span_tree(by_run.get(run.run_id, [])),
        [RunTrace(stage.run_id, stage, span_tree(by_run.get(stage.run_id, []))) for stage in stages],
    )
