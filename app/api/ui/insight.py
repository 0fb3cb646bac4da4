"""The cost and failures pages: series over time for the charts, limits and what they
alerted; the dead letters and failed runs, and replaying a selection of them.

Spend against a limit is summed from the history the way the workers' ledger counts it
(the UTC day or month the run started in, pipeline results left out, a stage for its
agent and its pipeline), and the thresholds it has passed are the alerts the workers
send for it (`threshold_id` names them as on `ferry.alerts`). A tenant's key sees its
own tenant's limits only: a project or agent total would tell it about other tenants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy.orm import Session

from app.api.services import ApiServices
from app.api.ui.context import Page, Services, check_post, render
from app.api.ui.queries import Point, failure_series, spent_by, usage_series
from app.api.ui.replay import Outcome, entries, replay_selection, resolve_deployment, selection_form
from app.api.ui.session import UiSession
from app.contracts.errors import ServiceUnreachableError
from app.observability.spend.alerts import threshold_id
from app.observability.spend.limits import LimitState
from app.observability.spend.periods import period_key, period_start
from app.project.config import SpendAlerts, SpendLimit

RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_RANGE = "7d"


@dataclass(frozen=True)
class LimitView:
    state: LimitState
    alerts: list[str]  # ids of the threshold alerts raised in this period

    @property
    def percent(self) -> float:
        return min(999.0, 100.0 * self.state.spent_usd / self.state.limit.limit_usd)


def register(router: APIRouter) -> None:
    router.add_api_route("/cost", cost_page, methods=["GET"])
    router.add_api_route("/failures", failures_page, methods=["GET"])
    router.add_api_route("/failures/replay", replay_failures, methods=["POST"])


async def cost_page(request: Request, session: Page, services: Services) -> Response:
    chosen = request.query_params.get("range", DEFAULT_RANGE)
    chosen = chosen if chosen in RANGES else DEFAULT_RANGE
    groups = ["agent", "model", "tenant"] if session.principal.admin else ["agent", "model"]
    by = request.query_params.get("by", "agent")
    by = by if by in groups else "agent"
    now = datetime.now(UTC)
    hourly = chosen == "24h"
    config = services.project.config

    def load() -> tuple[list[Point], list[LimitView]]:
        with Session(services.history.engine) as db:
            points = usage_series(db, by, session.tenant_scope, now - RANGES[chosen], hourly)
            limits = _limits(db, config.spend_limits, config.spend_alerts or SpendAlerts(), session, now)
        return points, limits

    points, limits = await asyncio.to_thread(load)
    return render(
        request,
        "cost.html",
        session,
        ranges=list(RANGES),
        chosen=chosen,
        groups=groups,
        by=by,
        chart=_chart(points, hourly, now - RANGES[chosen], now),
        totals=_totals(points),
        limits=limits,
        has_limits=bool(config.spend_limits),
    )


async def failures_page(request: Request, session: Page, services: Services) -> Response:
    return await _failures(request, session, services, outcomes=None)


async def replay_failures(request: Request, session: Page, services: Services) -> Response:
    """Replay the ticked dead letters and failed runs, or with `dry_run` say what it would do."""
    form, refs = await selection_form(request)
    check_post(request, session, form)
    if services.broker is None or services.sink is None:
        raise HTTPException(503, "this server is not connected to Kafka for replays")
    dry_run = form.get("mode") != "replay"
    try:
        deployment = await resolve_deployment(services, form.get("deployment", ""))
        since = datetime.now(UTC) - RANGES[_range(form.get("range"))]
        listed = await entries(services, session, since) or []
        outcomes = await replay_selection(services, session, listed, refs, deployment, dry_run)
    except ServiceUnreachableError:
        raise HTTPException(503, "Kafka did not answer; try again shortly") from None
    return await _failures(request, session, services, outcomes=outcomes, dry_run=dry_run, chosen=form.get("range"))


async def _failures(
    request: Request,
    session: UiSession,
    services: ApiServices,
    *,
    outcomes: list[Outcome] | None,
    dry_run: bool = False,
    chosen: str | None = None,
) -> Response:
    chosen = _range(chosen or request.query_params.get("range"))
    now = datetime.now(UTC)
    hourly = chosen == "24h"

    def load() -> list[Point]:
        with Session(services.history.engine) as db:
            return failure_series(db, session.tenant_scope, now - RANGES[chosen], hourly)

    points = await asyncio.to_thread(load)
    try:
        letters, unreachable = await entries(services, session, now - RANGES[chosen]), None
    except ServiceUnreachableError as exc:
        letters, unreachable = None, str(exc)
    return render(
        request,
        "failures.html",
        session,
        ranges=list(RANGES),
        chosen=chosen,
        chart=_chart(points, hourly, now - RANGES[chosen], now),
        totals=_totals(points),
        entries=letters,
        unreachable=unreachable,
        outcomes=outcomes,
        dry_run=dry_run,
        can_replay=services.sink is not None,
    )


def _range(given: str | None) -> str:
    return given if given in RANGES else DEFAULT_RANGE


def _limits(
    db: Session, limits: Sequence[SpendLimit], alerts: SpendAlerts, session: UiSession, now: datetime
) -> list[LimitView]:
    views: list[LimitView] = []
    tenant = session.tenant_scope
    for limit in limits:
        if tenant is not None and (limit.scope != "tenant" or limit.name not in (None, tenant)):
            continue
        spent = spent_by(db, limit.scope, period_start(limit.period, now), tenant)
        if limit.scope == "project":
            subjects: dict[str | None, float] = {None: spent.get("", 0.0)}
        elif limit.name is not None:
            subjects = {limit.name: spent.get(limit.name, 0.0)}
        else:
            subjects = dict(spent.items()) or ({tenant: 0.0} if tenant is not None else {})
        for subject, amount in sorted(subjects.items(), key=lambda item: -item[1]):
            state = LimitState(limit, subject, period_key(limit.period, now), amount)
            raised = [threshold_id(state, pct) for pct in sorted(alerts.thresholds) if state.share * 100 >= pct]
            views.append(LimitView(state, raised))
    return views


def _buckets(hourly: bool, since: datetime, now: datetime) -> list[str]:
    """Every bucket of the range, so a quiet hour or day is a zero, not a gap the chart hides."""
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    moment = since.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        moment = moment.replace(hour=0)
    fmt = "%Y-%m-%d %H" if hourly else "%Y-%m-%d"
    found = []
    while moment <= now:
        found.append(moment.strftime(fmt))
        moment += step
    return found


def _chart(points: list[Point], hourly: bool, since: datetime, now: datetime) -> dict[str, Any]:
    """Chart.js-ready data: labels (buckets) and one series per key of cost, tokens and runs."""
    labels = _buckets(hourly, since, now)
    index = {label: i for i, label in enumerate(labels)}
    keys = sorted({p.key for p in points})
    series: dict[str, dict[str, list[float]]] = {
        key: {"cost": [0.0] * len(labels), "tokens": [0.0] * len(labels), "runs": [0.0] * len(labels)} for key in keys
    }
    for p in points:
        at = index.get(p.bucket)
        if at is None:
            continue
        series[p.key]["cost"][at] += p.cost_usd
        series[p.key]["tokens"][at] += p.tokens
        series[p.key]["runs"][at] += p.runs
    shown = [label[5:] + (":00" if hourly else "") for label in labels]  # drop the year: MM-DD[ HH:00]
    return {"labels": shown, "series": [{"key": key, **series[key]} for key in keys]}


def _totals(points: list[Point]) -> list[Point]:
    totals: dict[str, Point] = {}
    for p in points:
        was = totals.get(p.key)
        totals[p.key] = (
            p if was is None else Point("", p.key, was.runs + p.runs, was.tokens + p.tokens, was.cost_usd + p.cost_usd)
        )
    return sorted(totals.values(), key=lambda p: (-p.cost_usd, -p.runs, p.key))
