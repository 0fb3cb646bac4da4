"""How the history commands print: money, tokens, durations, times, tables, `--since`.

Costs are printed as money with enough decimals to be read (`$0.001133`, `$0.00002`),
never in exponent notation; times in UTC, as the store keeps them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from app.contracts.money import format_usd

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

NOTHING = "–"


def money(cost: float | None) -> str:
    return format_usd(cost)  # the one money format (app/contracts/money.py)


def count(value: int | None) -> str:
    return NOTHING if value is None else f"{value:,}"


def duration(ms: float | None) -> str:
    if ms is None:
        return NOTHING
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 1 else f"{ms:.2f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def seconds(value: float) -> str:
    return f"{value:g} s"


def when(moment: datetime | None) -> str:
    if moment is None:
        return NOTHING
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2h`, `30m`, `7d`, `1w`, `45s` ago, or an ISO date/time (UTC unless it says otherwise)."""
    match = _DURATION.match(text)
    if match:
        amount = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        return (now or datetime.now(UTC)) - timedelta(seconds=amount)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (30m, 2h, 7d, 1w) nor an ISO time (2026-05-01, 2026-05-01T12:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """Columns padded to their widest cell; numeric columns (`right`) aligned right."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(padded).rstrip()

    return [line(headers), *(line(r) for r in rows)]


class Paint:
    """Red failures and dim details on a terminal; plain text in pipes and with NO_COLOR."""

    def __init__(self, stream: TextIO | None = None) -> None:
        out = stream or sys.stdout
        self.enabled = out.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def fail(self, text: str) -> str:
        return self._wrap("1;31", text)

    def ok(self, text: str) -> str:
        return self._wrap("32", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)
