"""Spend limits and alerts (`spend_limits` / `spend_alerts` in ferry.yaml). See docs/observability.md.

SpendControl      what a worker builds: ledger, limits, guard, feed and alert publisher
SpendLedger       cost per project / agent / tenant per UTC day and month
SpendLimits       is there room for a run; the state of every limit
AlertRules        which threshold and spike alerts are due
"""

from app.observability.spend.alerts import AlertRules
from app.observability.spend.control import SpendControl
from app.observability.spend.guard import SpendGuard
from app.observability.spend.ledger import SpendLedger
from app.observability.spend.limits import LimitState, SpendLimits

__all__ = ["AlertRules", "LimitState", "SpendControl", "SpendGuard", "SpendLedger", "SpendLimits"]
