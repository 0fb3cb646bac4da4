"""`spend_limits` and `spend_alerts` in ferry.yaml: read as written, mistakes reported at their line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from app.project import load_project
from app.project.problems import ProjectError

AGENT = """\
version: "1.0"
name: a
description: test agent
model: openai/gpt-4o-mini
system_prompt: You help.
"""


def project_with(root: Path, ferry_yaml: str) -> Path:
    (root / "agents").mkdir()
    (root / "agents" / "a.yaml").write_text(AGENT)
    (root / "ferry.yaml").write_text(textwrap.dedent(ferry_yaml))
    return root


def problems_of(root: Path) -> list[str]:
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    return [str(problem) for problem in caught.value.problems]


def test_limits_and_alerts_are_read_as_written(tmp_path: Path) -> None:
    project = load_project(
        project_with(
            tmp_path,
            """\
            spend_limits:
              - scope: project
                period: day
                limit_usd: 50
              - scope: agent
                name: a
                period: month
                limit_usd: 200
              - scope: tenant
                period: day
                limit_usd: 5
            spend_alerts:
              thresholds: [90, 50]
              spike_factor: 4
            """,
        )
    )
    config = project.config
    assert [(s.scope, s.name, s.period, s.limit_usd) for s in config.spend_limits] == [
        ("project", None, "day", 50.0),
        ("agent", "a", "month", 200.0),
        ("tenant", None, "day", 5.0),
    ]
    assert config.spend_alerts is not None
    assert config.spend_alerts.thresholds == (50, 90) and config.spend_alerts.spike_factor == 4
    assert config.spend_alerts.spike_window_days == 30 and config.watches_spend


def test_no_limits_no_spend_watching(tmp_path: Path) -> None:
    assert not load_project(project_with(tmp_path, "history:\n  retention_days: 3\n")).config.watches_spend


def test_mistakes_are_reported_at_their_line(tmp_path: Path) -> None:
    root = project_with(
        tmp_path,
        """\
        spend_limits:
          - scope: project
            period: week
            limit_usd: 0
          - scope: team
            period: day
            limit_usd: 1
          - scope: project
            name: a
            period: day
            limit_usd: 1
        spend_alerts:
          thresholds: [50, 150]
          spike_min_days: 40
        """,
    )
    assert problems_of(root) == [
        "ferry.yaml:3:13 spend_limits[0].period: must be 'day' or 'month' (got 'week')",
        "ferry.yaml:4:16 spend_limits[0].limit_usd: must be greater than 0 (got 0)",
        "ferry.yaml:5:12 spend_limits[1].scope: must be 'project', 'agent' or 'tenant' (got 'team')",
        "ferry.yaml:8:5 spend_limits[2]: a project limit covers every run and takes no `name` (use scope agent or tenant)",
        "ferry.yaml:13:15 spend_alerts.thresholds: thresholds are percentages between 1 and 100 (got [50, 150])",
    ]


def test_two_limits_for_the_same_scope_and_period_are_one_too_many(tmp_path: Path) -> None:
    root = project_with(
        tmp_path,
        """\
        spend_limits:
          - {scope: agent, name: a, period: day, limit_usd: 1}
          - {scope: agent, period: day, limit_usd: 2}
          - {scope: agent, name: a, period: day, limit_usd: 3}
        spend_alerts:
          spike_min_days: 40
        """,
    )
    assert problems_of(root) == [
        "ferry.yaml:2:3 spend_limits: [2] repeats [0]: two limits for agent a per day; keep one",
        "ferry.yaml:6:3 spend_alerts: spike_min_days (40) cannot exceed spike_window_days (30)",
    ]
