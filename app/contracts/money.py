"""Costs as people read them: the one format of every price Ferry prints.

Costs are float sums of per-token prices, so the raw value prints as
`0.000031049999999999996` or `2e-05`. LLM calls cost fractions of a cent, so a fixed
number of decimals either hides them (`$0.00`) or pads large sums; four significant
digits keep both readable: `$0.00003105`, `$0.001133`, `$0.50`, `$1,234.50`.
Here, at the bottom of the layers, so engine messages and every command share it.
"""

from __future__ import annotations

import math
from decimal import Decimal

#: Significant digits a small cost keeps: $0.001133 rather than $0.00.
_COST_DIGITS = 4
_MAX_DECIMALS = 12


def format_usd(cost: float | None) -> str:
    """`$0.00003105`, `$0.50`, `$1,234.50`, `$0`; `n/a` when the cost is not known."""
    if cost is None or not math.isfinite(cost):
        return "n/a"
    if cost == 0:
        return "$0"
    sign = "-" if cost < 0 else ""
    value = abs(cost)
    if value >= 1:
        return f"{sign}${value:,.2f}"
    decimals = min(_MAX_DECIMALS, max(2, _COST_DIGITS - 1 - math.floor(math.log10(value))))
    rounded = round(Decimal(repr(value)), decimals)
    if rounded == 0:
        return f"{sign}<${format(Decimal(1).scaleb(-decimals), 'f')}"
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
        whole, _, frac = text.partition(".")
        text = f"{whole}.{frac.ljust(2, '0')}" if frac else f"{whole}.00"
    return f"{sign}${text}"
