"""How history commands print money, durations and read `--since`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from app.cli.history_format import duration, money, parse_since, table

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        (0.001133, "$0.001133"),
        (2e-05, "$0.00002"),
        (0.000031049999999999996, "$0.00003105"),
        (0.5, "$0.50"),
        (1234.5, "$1,234.50"),
        (0, "$0"),
        (None, "n/a"),
    ],
)
def test_costs_print_as_money(cost: float | None, shown: str) -> None:
    assert money(cost) == shown


def test_no_cost_ever_prints_in_exponent_notation() -> None:
    for exponent in range(-13, 4):
        for mantissa in (1, 2.5, 9.99):
            text = money(mantissa * 10.0**exponent)
            assert "e" not in text.lower() and text.startswith(("$", "<$")), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("30m", NOW - timedelta(minutes=30)),
        ("1w", NOW - timedelta(weeks=1)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-05-01", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-01T08:30", datetime(2026, 5, 1, 8, 30, tzinfo=UTC)),
        ("2026-05-01T08:30Z", datetime(2026, 5, 1, 8, 30, tzinfo=UTC)),
        ("2026-05-01T10:30+02:00", datetime(2026, 5, 1, 8, 30, tzinfo=UTC)),
    ],
)
def test_since_takes_durations_and_iso_times(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2x", "-2h", "2026-13-01"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="neither a duration"):
        parse_since(text, NOW)


def test_durations_read_naturally() -> None:
    assert [duration(ms) for ms in (0.5, 820, 2310, 65_000, 3_725_000)] == [
        "0.50 ms",
        "820 ms",
        "2.31 s",
        "1m 05s",
        "1h 02m",
    ]


def test_table_aligns_columns() -> None:
    lines = table(("A", "N"), [("x", "1"), ("longer", "1,000")], right=frozenset({1}))
    assert lines == ["A           N", "x           1", "longer  1,000"]
