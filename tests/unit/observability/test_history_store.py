"""The history store on SQLite: idempotent upserts, replays, the span tree, filters,
usage without double counting, retention, and the schema its migrations build."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.contracts import RunStatus, SpanEvent
from app.contracts.errors import ConfigError, ErrorCategory, ServiceUnreachableError
from app.observability.history import AmbiguousRunId, HistoryStore, RunFilter, UsageBy
from app.observability.history.migrate import head_revision
from app.observability.history.schema import RunRow, SpanRow
from app.observability.history.trace_tree import load_trace, span_tree
from tests.unit.observability.history_samples import (
    T0,
    failed_tool_spans,
    llm_run_spans,
    pipeline_results,
    result,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    opened = HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}")
    yield opened
    opened.close()


def snapshot(store: HistoryStore) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Every stored row, as plain data, in key order."""
    with store.engine.connect() as connection:
        runs = [dict(row._mapping) for row in connection.execute(select(RunRow.__table__).order_by(RunRow.run_id))]
        spans = [dict(row._mapping) for row in connection.execute(select(SpanRow.__table__).order_by(SpanRow.span_id))]
    return runs, spans


def test_writing_the_same_messages_again_changes_nothing(store: HistoryStore) -> None:
    results = [result("r1"), result("r2", status=RunStatus.FAILED, category=ErrorCategory.RATE_LIMIT)]
    spans = llm_run_spans("r1")
    store.write(results, spans)
    first = snapshot(store)
    store.write(results, spans)
    store.write(results[:1], spans[2:4])
    assert snapshot(store) == first
    assert store.counts() == (2, len(spans))


def test_replaying_the_whole_topic_twice_into_an_empty_store_gives_the_same_history(tmp_path: Path) -> None:
    # The topic holds a run redone after a crash: its later result must win, both times.
    redone = result("r3", status=RunStatus.COMPLETED, seconds=3)
    topic = [result("r3", status=RunStatus.TIMEOUT, category=ErrorCategory.TIMEOUT), result("r4"), redone]
    spans = [*llm_run_spans("r3"), *failed_tool_spans("r4")]
    snapshots = []
    for name in ("a.db", "b.db"):
        store = HistoryStore.open(f"sqlite:///{tmp_path / name}")
        for offset in range(0, len(topic), 2):  # batches cut anywhere
            store.write(topic[offset : offset + 2], spans[offset * 2 : offset * 2 + 4])
        store.write((), spans)  # and a redelivery on top
        snapshots.append(snapshot(store))
        store.close()
    assert snapshots[0] == snapshots[1]
    runs = {row["run_id"]: row for row in snapshots[0][0]}
    assert runs["r3"]["status"] == "completed" and runs["r3"]["duration_ms"] == 3000
    assert runs["r3"]["error_category"] is None


def test_a_run_row_holds_what_a_user_asks_about(store: HistoryStore) -> None:
    store.write([result("r1", category=ErrorCategory.TOOL_ERROR, status=RunStatus.FAILED, trigger="kafka")])
    (run,) = store.runs()
    assert (run.agent, run.status, run.tenant, run.trigger_source) == ("summarizer", "failed", "acme", "kafka")
    assert run.trigger_metadata == {"topic": "orders"}
    assert run.started_at == T0 and run.ended_at == T0 + timedelta(seconds=1.5)
    assert run.queued_at == T0 - timedelta(seconds=0.25)  # the request's created_at: 250 ms in the queue
    assert run.started_at.tzinfo is not None  # SQLite keeps no zone; the store gives UTC back
    assert (run.prompt_tokens, run.completion_tokens, run.total_tokens, run.cost_usd) == (120, 30, 150, 0.000045)
    assert (run.error_category, run.error_message) == ("tool_error", "tool_error happened")
    assert run.kind == "run" and run.root_run_id == "r1" and run.parent_run_id is None


def test_pipeline_rows_know_their_root_and_parent(store: HistoryStore) -> None:
    store.write(pipeline_results("p1", ["extract", "validate", "store"]))
    runs = {run.run_id: run for run in store.runs()}
    assert runs["p1"].kind == "pipeline" and runs["p1"].parent_run_id is None
    assert [runs[f"p1-s{i}"].kind for i in range(3)] == ["stage"] * 3
    assert [runs[f"p1-s{i}"].parent_run_id for i in range(3)] == ["p1", "p1-s0", "p1-s1"]
    assert {runs[f"p1-s{i}"].root_run_id for i in range(3)} == {"p1"}
    assert [r.run_id for r in store.runs_of_root("p1")] == ["p1-s0", "p1-s1", "p1-s2"]


def test_spans_keep_their_tree(store: HistoryStore) -> None:
    spans = llm_run_spans("r1")
    store.write([result("r1")], spans)
    (root,) = span_tree(store.spans(["r1"]))
    assert root.span.kind == "run"
    assert [c.span.kind for c in root.children] == ["llm_call", "tool_call", "output_validation"]
    call = root.children[0]
    assert [c.span.kind for c in call.children] == ["llm_attempt", "retry_wait", "llm_attempt"]
    assert call.children[0].span.error_category == "rate_limit"
    assert call.span.model == "openai/gpt-4o-mini" and call.span.cost_usd == 0.000045
    assert root.children[1].span.attributes["tool.arguments"].endswith('"api_key": "[REDACTED]"}')


def test_a_span_whose_parent_was_lost_is_a_root_not_dropped(store: HistoryStore) -> None:
    spans = [s for s in llm_run_spans("r1") if s.kind != "llm_call"]
    store.write((), spans)
    roots = span_tree(store.spans(["r1"]))
    assert sorted(r.span.kind for r in roots) == ["llm_attempt", "llm_attempt", "retry_wait", "run"]


def test_trace_of_a_pipeline_holds_every_stage_with_its_steps(store: HistoryStore) -> None:
    results = pipeline_results("p1", ["extract", "validate"])
    store.write(results, [*llm_run_spans("p1-s0"), *failed_tool_spans("p1-s1")])
    trace = load_trace(store, "p1")
    assert trace is not None and trace.run is not None and trace.run.kind == "pipeline"
    assert [s.run_id for s in trace.stages] == ["p1-s0", "p1-s1"]
    assert [len(s.roots[0].children) for s in trace.stages] == [3, 1]
    assert trace.as_json()["stages"][1]["spans"][0]["children"][0]["error_category"] == "tool_timeout"


def test_runs_are_found_by_unique_prefix_and_spans_without_a_result(store: HistoryStore) -> None:
    store.write([result("abcd-1111"), result("abcd-2222"), result("beef-0001")], llm_run_spans("feed-0001"))
    assert store.run("beef") is not None and store.run("beef").run_id == "beef-0001"  # type: ignore[union-attr]
    with pytest.raises(AmbiguousRunId) as ambiguous:
        store.run("abcd")
    assert sorted(ambiguous.value.matches) == ["abcd-1111", "abcd-2222"]
    assert store.run("abc") is None  # too short to look up by prefix
    assert store.run("nope-0000") is None
    trace = load_trace(store, "feed")
    assert trace is not None and trace.run is None and trace.run_id == "feed-0001"
    assert load_trace(store, "nope-0000") is None


def test_filters_select_runs_newest_first(store: HistoryStore) -> None:
    store.write(
        [
            result("old", start=T0 - timedelta(days=3)),
            result("a-ok", agent="a", start=T0),
            result(
                "a-429",
                agent="a",
                start=T0 + timedelta(minutes=1),
                status=RunStatus.FAILED,
                category=ErrorCategory.RATE_LIMIT,
            ),
            result("b-other", agent="b", tenant="globex", start=T0 + timedelta(minutes=2)),
        ]
    )
    assert [r.run_id for r in store.runs()] == ["b-other", "a-429", "a-ok", "old"]
    assert [r.run_id for r in store.runs(RunFilter(agent="a"))] == ["a-429", "a-ok"]
    assert [r.run_id for r in store.runs(RunFilter(status="failed"))] == ["a-429"]
    assert [r.run_id for r in store.runs(RunFilter(category="rate_limit"))] == ["a-429"]
    assert [r.run_id for r in store.runs(RunFilter(tenant="globex"))] == ["b-other"]
    assert [r.run_id for r in store.runs(RunFilter(since=T0 - timedelta(hours=1)))] == ["b-other", "a-429", "a-ok"]
    assert [r.run_id for r in store.runs(RunFilter(limit=2))] == ["b-other", "a-429"]


def test_usage_counts_pipeline_stages_once_and_models_by_llm_call(store: HistoryStore) -> None:
    results = [*pipeline_results("p1", ["extract", "validate"]), result("solo", agent="extract", cost=None)]
    store.write(results, [*llm_run_spans("p1-s0"), *llm_run_spans("solo", model="gemini/gemini-2.5-flash")])
    by_agent = {line.key: line for line in store.usage(UsageBy.AGENT)}
    assert set(by_agent) == {"extract", "validate"}  # the pipeline's own row is not counted again
    assert by_agent["extract"].count == 2 and by_agent["extract"].unpriced == 1
    assert by_agent["extract"].prompt_tokens == 100 + 120
    assert by_agent["extract"].cost_usd == pytest.approx(0.0001)
    assert by_agent["validate"].cost_usd == pytest.approx(0.0002)
    by_tenant = store.usage(UsageBy.TENANT)
    assert [(line.key, line.count) for line in by_tenant] == [("acme", 3)]
    by_model = {line.key: line for line in store.usage(UsageBy.MODEL)}
    assert by_model["openai/gpt-4o-mini"].count == 1 and by_model["openai/gpt-4o-mini"].prompt_tokens == 120
    assert set(by_model) == {"openai/gpt-4o-mini", "gemini/gemini-2.5-flash"}
    (day,) = store.usage(UsageBy.DAY)
    assert day.key == "2026-05-04" and day.count == 3
    assert store.usage(UsageBy.AGENT, since=T0 + timedelta(days=1)) == []


def test_days_are_utc_days(store: HistoryStore) -> None:
    late = T0.replace(hour=23, minute=59)
    store.write([result("late", start=late), result("next", start=late + timedelta(minutes=2))])
    assert [(line.key, line.count) for line in store.usage(UsageBy.DAY)] == [("2026-05-04", 1), ("2026-05-05", 1)]


def test_prune_removes_runs_and_spans_older_than_the_cutoff(store: HistoryStore) -> None:
    old_start = T0 - timedelta(days=40)
    store.write(
        [result("old", start=old_start), result("new", start=T0)],
        [*llm_run_spans("old", start=old_start), *llm_run_spans("new", start=T0)],
    )
    report = store.prune(T0 - timedelta(days=30))
    assert (report.runs, report.spans) == (1, 7)
    assert [r.run_id for r in store.runs()] == ["new"]
    assert {s.run_id for s in store.spans(["old", "new"])} == {"new"}
    assert store.prune(T0 - timedelta(days=30)).runs == 0


def test_prune_works_through_a_backlog_larger_than_one_chunk(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.observability.history.store.PRUNE_CHUNK", 3)
    store.write([result(f"r{i}", start=T0 - timedelta(days=60, minutes=i)) for i in range(7)] + [result("keep")])
    assert store.prune(T0 - timedelta(days=1)).runs == 7
    assert [r.run_id for r in store.runs()] == ["keep"]


def test_opening_again_keeps_the_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    first = HistoryStore.open(url)
    first.write([result("r1")])
    first.close()
    again = HistoryStore.open(url)
    assert [r.run_id for r in again.runs()] == ["r1"]
    again.close()


def test_a_reader_in_the_wrong_folder_is_told_where_history_is_expected(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "history.db"
    with pytest.raises(ConfigError, match=r"no run history at .*nowhere/history.db"):
        HistoryStore.open(f"sqlite:///{missing}", create=False)
    assert not missing.exists()


def test_an_unreachable_postgres_is_one_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServiceUnreachableError) as caught:
        HistoryStore.open(f"postgresql://ferry:s3cret-pw@127.0.0.1:{port}/ferry?connect_timeout=2")
    assert "s3cret-pw" not in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_span_events_round_trip_unchanged(store: HistoryStore) -> None:
    spans = llm_run_spans("r1")
    store.write((), spans)
    stored = {s.span_id: s for s in store.spans(["r1"])}
    for event in spans:
        back = stored[event.span_id]
        rebuilt = SpanEvent(
            run_id=back.run_id, trace_id=back.trace_id, span_id=back.span_id, parent_span_id=back.parent_span_id,
            kind=back.kind, name=back.name, status=back.status, start=back.start_time, end=back.end_time,
            duration_ms=back.duration_ms, attributes=back.attributes,
        )  # fmt: skip
        assert rebuilt == event


def test_what_postgres_could_not_hold_is_made_storable_alike_on_every_backend(store: HistoryStore) -> None:
    nul = result("nul\x00run", agent="sum\x00marizer", tokens=(10**30, 1), category=ErrorCategory.INTERNAL)
    spans = llm_run_spans("nul\x00run")
    store.write([nul], [*spans[:-1], spans[-1].model_copy(update={"name": "run\x00x"})])
    (run,) = store.runs()
    assert (run.run_id, run.agent, run.prompt_tokens) == ("nulrun", "summarizer", 2**63 - 1)
    assert {s.run_id for s in store.spans(["nulrun"])} == {"nulrun"}


def test_the_head_revision_read_from_file_names_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    from app.observability.history.migrate import _config

    assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()


def test_opening_a_new_or_up_to_date_store_does_not_import_alembic(tmp_path: Path) -> None:
    """Every worker opens the store: alembic (~8 MiB) is for databases that need upgrading."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    opening = (
        "import sys; from app.observability.history.store import HistoryStore; "
        f"store = HistoryStore.open({url!r}); store.counts(); store.close(); "
        "print('alembic' in sys.modules)"
    )
    runs = [subprocess.run([sys.executable, "-c", opening], capture_output=True, text=True, check=True) for _ in "ab"]
    assert [r.stdout.strip() for r in runs] == ["False", "False"]  # the first creates the schema, at head
