"""UTC days and months as spend periods: their keys, starts and turns.

A period is named by its key (`2026-05-04` for a day, `2026-05` for a month): ledger
buckets, limit checks and alert ids all use the key, so a period is the same thing on
every worker whatever its local time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.project.config import SpendPeriod


def utc(moment: datetime) -> datetime:
    """A naive timestamp is taken as UTC (as the engine does with deadlines)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def period_key(period: SpendPeriod, moment: datetime) -> str:
    day = utc(moment).date()
    return day.isoformat() if period == "day" else f"{day.year:04d}-{day.month:02d}"


def day_key(day: date) -> str:
    return day.isoformat()


def period_start(period: SpendPeriod, moment: datetime) -> datetime:
    """The first instant of the period `moment` is in."""
    day = utc(moment).date()
    if period == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_before(day: date, count: int) -> list[date]:
    """The `count` days before `day`, oldest first."""
    return [day - timedelta(days=n) for n in range(count, 0, -1)]


def period_name(period: SpendPeriod) -> str:
    return "daily" if period == "day" else "monthly"
