"""`ferry runs`, `ferry trace` and `ferry usage` against a prepared history store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.cli import main
from app.contracts import RunStatus
from app.contracts.errors import ErrorCategory
from app.observability.history import HistoryStore
from app.observability.history.migrate import head_revision
from tests.unit.observability.history_samples import failed_tool_spans, llm_run_spans, pipeline_results, result

STAGES = ["invoice-extractor", "invoice-validator", "invoice-storer"]


@pytest.fixture
def url(tmp_path: Path) -> str:
    location = f"sqlite:///{tmp_path / 'history.db'}"
    store = HistoryStore.open(location)
    store.write(
        [
            *pipeline_results("p1", STAGES),
            result("r-429", status=RunStatus.FAILED, category=ErrorCategory.RATE_LIMIT, cost=None),
            result("r-ok", agent="summarizer", cost=0.001133),
        ],
        [*llm_run_spans("p1-s0"), *failed_tool_spans("p1-s1"), *llm_run_spans("r-ok")],
    )
    store.close()
    return location


def ferry(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runs_lists_every_run_with_its_columns(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ferry(capsys, "runs", "--database-url", url)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["RUN", "ID", "AGENT", "STATUS", "TRIGGER", "STARTED", "(UTC)", "DURATION", "TOKENS",
                              "COST", "ERROR"]  # fmt: skip
    by_id = {row.split()[0]: row for row in rows}
    assert set(by_id) == {"p1", "p1-s0", "p1-s1", "p1-s2", "r-429", "r-ok"}
    assert re.search(r"summarizer\s+completed\s+api\s+2026-05-04 10:00:00\s+1\.50 s\s+150\s+\$0\.001133", by_id["r-ok"])
    assert by_id["r-429"].split()[-2:] == ["n/a", "rate_limit"]
    assert "invoice (pipeline)" in by_id["p1"] and "invoice-validator (invoice #1)" in by_id["p1-s1"]


def test_runs_filters_and_limits(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = ferry(capsys, "runs", "--database-url", url, "--category", "rate_limit")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["r-429"]
    _, out, _ = ferry(capsys, "runs", "--database-url", url, "--agent", "summarizer", "--status", "completed")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["r-ok"]
    _, out, _ = ferry(capsys, "runs", "--database-url", url, "--limit", "2")
    assert len(out.splitlines()) == 3
    code, out, err = ferry(capsys, "runs", "--database-url", url, "--tenant", "nobody")
    assert (code, out, err.strip()) == (0, "", "no runs match")
    _, out, _ = ferry(capsys, "runs", "--database-url", url, "--since", "2026-05-04T10:00:03Z")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["p1-s2"]


def test_runs_json_has_every_field(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ferry(capsys, "runs", "--database-url", url, "--json", "--agent", "invoice")
    assert code == 0
    (run,) = json.loads(out)
    assert run["run_id"] == "p1" and run["kind"] == "pipeline" and run["total_tokens"] == 336
    assert run["output"] == {"stored": True} and run["started_at"] == "2026-05-04T10:00:00Z"


def test_trace_draws_the_steps_of_a_run(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ferry(capsys, "trace", "r-ok", "--database-url", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("summarizer  run r-ok  ✓ completed  1.50 s  120 in / 30 out  $0.001133")
    tree = lines[2:]
    assert tree == [
        "├─ llm openai/gpt-4o-mini  ✓  1.20 s  120 in / 30 out  $0.000045  2 attempts",
        "│  ├─ attempt 1 openai/gpt-4o-mini  ✗ rate_limit  15 ms  rate_limit: provider said no",
        "│  ├─ wait 1.00 s after attempt 1: rate_limit, Retry-After 2.00 s",
        "│  └─ attempt 2 openai/gpt-4o-mini  ✓  160 ms  120 in / 30 out",
        '├─ tool lookup(order_id="A-17", api_key="[REDACTED]")  ✓  40 ms  → 2,345 chars',
        "└─ output validation  ✓ valid  after 1 re-ask",
    ]


def test_trace_of_a_pipeline_shows_every_stage_under_the_root(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ferry(capsys, "trace", "p1", "--database-url", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("invoice  pipeline run p1  ✓ completed")
    stage_lines = [line for line in lines if re.match(r"^[├└]─ stage \d", line)]
    assert [line.split()[3:6] for line in stage_lines] == [[s, "run", f"p1-s{i}"] for i, s in enumerate(STAGES)]
    assert "│  └─ tool fetch  ✗ tool_timeout  250 ms" in out
    assert "│  │  ├─ attempt 1 openai/gpt-4o-mini  ✗ rate_limit" in out


def test_trace_json_nests_spans_and_stages(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = ferry(capsys, "trace", "p1", "--json", "--database-url", url)
    data = json.loads(out)
    assert data["run"]["run_id"] == "p1" and [s["run_id"] for s in data["stages"]] == ["p1-s0", "p1-s1", "p1-s2"]
    run_span = data["stages"][0]["spans"][0]
    assert [c["kind"] for c in run_span["children"]] == ["llm_call", "tool_call", "output_validation"]


def test_a_failed_run_without_spans_still_explains_itself(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = ferry(capsys, "trace", "r-42", "--database-url", url)  # a unique prefix
    assert "✗ failed" in out and "✗ rate_limit: rate_limit happened" in out
    assert "no steps recorded" in out


@pytest.mark.parametrize(
    ("run_id", "message"),
    [("nope-1234", "no run 'nope-1234' in the run history"), ("p1-s", "matches several runs")],
)
def test_an_unknown_or_ambiguous_run_id_is_one_line_and_exit_2(
    url: str, capsys: pytest.CaptureFixture[str], run_id: str, message: str
) -> None:
    code, out, err = ferry(capsys, "trace", run_id, "--database-url", url)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_reading_where_no_history_was_recorded_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = ferry(capsys, "runs", "--database-url", f"sqlite:///{tmp_path / 'none' / 'history.db'}")
    assert code == 2 and "no run history at" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()


def test_usage_by_agent_sums_stages_not_pipelines(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ferry(capsys, "usage", "--database-url", url)
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if not line.startswith("─")}
    assert "invoice" not in rows
    assert rows["summarizer"] == ["2", "240", "60", "$0.001133", "1"]
    assert rows["total"] == ["5", "543", "93", "$0.001733", "1"]
    assert "UNPRICED" in err


@pytest.mark.parametrize("by", ["agent", "model", "tenant", "day"])
def test_usage_prints_money_never_exponents(url: str, capsys: pytest.CaptureFixture[str], by: str) -> None:
    code, out, _ = ferry(capsys, "usage", "--by", by, "--database-url", url)
    assert code == 0 and "$" in out
    assert not re.search(r"\de-\d", out)


def test_usage_by_model_counts_llm_calls(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = ferry(capsys, "usage", "--by", "model", "--json", "--database-url", url)
    (line,) = json.loads(out)
    assert line == {
        "key": "openai/gpt-4o-mini",
        "count": 2,
        "prompt_tokens": 240,
        "completion_tokens": 60,
        "cost_usd": pytest.approx(0.00009),
        "unpriced": 0,
    }


def test_a_bad_since_is_a_usage_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["runs", "--database-url", url, "--since", "yesterday"])
    assert exited.value.code == 2
    assert "neither a duration" in capsys.readouterr().err


def test_history_prune_applies_the_retention(url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = ferry(capsys, "history", "prune", "--database-url", url, "--retention-days", "1")
    assert code == 0 and out.strip() == "pruned 6 runs and 16 spans older than 1 days"
    _, out, err = ferry(capsys, "runs", "--database-url", url)
    assert out == "" and "no runs match" in err


def test_history_prune_reads_retention_from_ferry_yaml(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "ferry.yaml").write_text("history:\n  retention_days: 36500\n")
    code, out, _ = ferry(capsys, "history", "prune", "--database-url", url, "--project", str(tmp_path))
    assert code == 0 and out.startswith("pruned 0 runs and 0 spans older than 36500 days")
    (tmp_path / "ferry.yaml").write_text("history:\n  retention_days: 0\n")
    code, _, err = ferry(capsys, "history", "prune", "--database-url", url, "--project", str(tmp_path))
    assert code == 2 and "ferry.yaml:2" in err and "retention_days" in err


def test_history_status_says_where_and_how_much(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ferry(capsys, "history", "status", "--database-url", url)
    assert code == 0
    assert f"revision {head_revision()}" in out and re.search(r"runs\s+6\n", out) and re.search(r"spans\s+16\n", out)


def test_the_default_store_is_under_the_ferry_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FERRY_DATABASE_URL", raising=False)
    store = HistoryStore.open()  # a writer creates it
    store.write([result("r1")])
    store.close()
    assert (tmp_path / "home" / "history.db").is_file()
    _, out, _ = ferry(capsys, "runs")
    assert out.splitlines()[1].startswith("r1 ")
    monkeypatch.setenv("FERRY_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    code, _, err = ferry(capsys, "runs")
    assert code == 2 and "elsewhere.db" in err


def test_the_worker_hooks_build_a_projector_unless_history_is_off() -> None:
    import argparse

    from app.cli.history import add_history_options, projector_from_args
    from app.streams.naming import TopicNames

    parser = argparse.ArgumentParser()
    add_history_options(parser)
    on = projector_from_args(
        parser.parse_args(["--database-url", "sqlite:////tmp/x.db"]), "k:9092", TopicNames("p."), "app1", 7
    )
    assert on is not None
    assert (on.settings.group_id, on.settings.retention_days, on.settings.database_url) == (
        "app1.history",
        7,
        "sqlite:////tmp/x.db",
    )
    assert (on.results_topic, on.traces_topic) == ("p.runs.results", "p.runs.traces")
    off = projector_from_args(parser.parse_args(["--no-history"]), "k:9092", TopicNames(), "app1", 7)
    assert off is None


def test_building_the_cli_does_not_load_the_history_store() -> None:
    """`ferry --help` stays instant: SQLAlchemy loads only in the history handlers."""
    import subprocess
    import sys

    code = "import sys, app.cli; app.cli.build_parser(); print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
