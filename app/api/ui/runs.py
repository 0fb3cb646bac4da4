"""The runs pages: the filtered list with the runs in flight, one run with its waterfall, cancel.

Every query is scoped to the session's tenant (an admin key: all, or the tenant it
filters on). A run of another tenant is "no such run", exactly as one that does not
exist. The list refreshes itself: `live.json` is polled by `ui.js` every few seconds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session

from app.api.services import ApiServices
from app.api.submission import PRODUCE_TIMEOUT_S, finished_run
from app.api.ui.context import JsonSession, Page, Services, check_post, form_of, render
from app.api.ui.documents import Shown, show_value
from app.api.ui.queries import InFlight, RunsQuery, in_flight, runs_page
from app.api.ui.replay import result_of
from app.api.ui.session import UiSession
from app.api.ui.waterfall import stage_runs, waterfall
from app.contracts import RunStatus
from app.contracts.errors import ConfigError, ErrorCategory
from app.observability.history import AmbiguousRunId, RunRecord
from app.observability.history.trace_tree import RunTrace, load_trace
from app.streams.replay import find_request

PAGE_SIZE = 50
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
#: What a notice code in the query string means: fixed sentences, never text from the URL.
NOTICES = {
    "cancel-sent": "Cancel sent: a queued run never starts; a running one stops within about a second.",
    "cancel-finished": "The run had already finished: nothing to cancel.",
    "replayed": "Replayed: this is a new run of the original request; it shows here once it has steps or a result.",
}


def register(router: APIRouter) -> None:
    router.add_api_route("", home, methods=["GET"])
    router.add_api_route("/", home, methods=["GET"])
    router.add_api_route("/runs", runs_list, methods=["GET"])
    router.add_api_route("/runs/live.json", live, methods=["GET"])
    router.add_api_route("/runs/{run_id}", run_detail, methods=["GET"])
    router.add_api_route("/runs/{run_id}/cancel", cancel, methods=["POST"])


async def home(session: Page) -> Response:
    return RedirectResponse("/ui/runs", status_code=303)


def _filters(request: Request, session: UiSession) -> tuple[RunsQuery, dict[str, str]]:
    """The query string as a page query; the filters echoed back to the form (only known keys)."""
    params = request.query_params
    shown = {
        name: params.get(name, "").strip()
        for name in ("agent", "status", "category", "tenant", "deployment", "range", "since", "until")
    }
    now = datetime.now(UTC)
    since = _instant(shown["since"])
    if since is None and shown["range"] in RANGES:
        since = now - RANGES[shown["range"]]
    tenant = session.tenant_scope if session.tenant_scope is not None else (shown["tenant"] or None)
    query = RunsQuery(
        tenant=tenant,
        agent=shown["agent"] or None,
        status=shown["status"] or None,
        category=shown["category"] or None,
        deployment=shown["deployment"] or None,
        since=since,
        until=_instant(shown["until"]),
        limit=PAGE_SIZE,
        cursor=params.get("cursor") or None,
    )
    return query, shown


async def runs_list(request: Request, session: Page, services: Services) -> Response:
    query, shown = _filters(request, session)

    def load() -> tuple[list[RunRecord], str | None, list[InFlight]]:
        with Session(services.history.engine) as db:
            page, next_cursor = runs_page(db, query)
            flying = in_flight(db, session.tenant_scope, datetime.now(UTC)) if query.cursor is None else []
        return page, next_cursor, flying

    page, next_cursor, flying = await asyncio.to_thread(load)
    kept = {name: value for name, value in shown.items() if value}
    values: dict[str, Any] = {
        "runs": page,
        "next_url": f"/ui/runs?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None,
        "newest_url": f"/ui/runs?{urlencode(kept)}",
        "in_flight": flying,
        "filters": shown,
        "first_page": query.cursor is None,
        "agents": sorted(services.project.agents),
        "statuses": [s.value for s in RunStatus],
        "categories": [c.value for c in ErrorCategory],
        "tenants": await _tenants(services, session),
        "ranges": list(RANGES),
    }
    if request.headers.get("x-ferry-fragment") == "rows":
        return render(request, "_run_rows.html", session, **values)
    return render(request, "runs.html", session, **values)


async def live(request: Request, session: JsonSession, services: Services) -> JSONResponse:
    """The runs in flight, for the list's live panel: ids, agents, how long, queued or running."""

    def load() -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        with Session(services.history.engine) as db:
            flying = in_flight(db, session.tenant_scope, now)
        return [
            {
                "run_id": f.run_id,
                "agent": f.agent,
                "tenant": f.tenant,
                "state": "running" if f.running else "queued",
                "seconds": round((now - f.accepted_at).total_seconds(), 1),
            }
            for f in flying
        ]

    return JSONResponse({"in_flight": await asyncio.to_thread(load)}, headers={"Cache-Control": "no-store"})


async def run_detail(request: Request, run_id: str, session: Page, services: Services) -> Response:
    record = await finished_run(services, run_id)
    submitted = None
    if record is None:
        submitted = await asyncio.to_thread(services.store.submission, run_id)
    tenant = record.tenant if record is not None else (submitted.tenant if submitted is not None else None)
    if tenant is None or not session.principal.may_see(tenant):
        return render(request, "not_found.html", session, status_code=404, what="run")
    trace = await asyncio.to_thread(_trace, services, run_id)
    steps = waterfall(trace) if trace is not None else None
    notice = NOTICES.get(request.query_params.get("notice", ""))
    shown_input, input_note = None, None
    if record is not None and request.query_params.get("input") == "1":
        shown_input, input_note = await _input_of(services, record)
    return render(
        request,
        "run.html",
        session,
        run=record,
        submitted=submitted,
        run_id=run_id,
        tenant=tenant,
        output=show_value(record.output) if record is not None and record.output is not None else None,
        waterfall=steps,
        stages=stage_runs(trace) if trace is not None else [],
        notice=notice,
        cancellable=record is None and submitted is not None and submitted.queued,
        replayable=record is not None and record.kind != "stage" and services.broker is not None,
        can_load_input=record is not None and record.kind != "stage" and services.broker is not None,
        input=shown_input,
        input_note=input_note,
    )


async def cancel(request: Request, run_id: str, session: Page, services: Services) -> Response:
    check_post(request, session, await form_of(request))
    record = await finished_run(services, run_id)
    submitted = None if record is not None else await asyncio.to_thread(services.store.submission, run_id)
    tenant = record.tenant if record is not None else (submitted.tenant if submitted is not None else None)
    if tenant is None or not session.principal.may_see(tenant):
        raise HTTPException(404, "no such run")
    if record is not None:
        return RedirectResponse(f"/ui/runs/{run_id}?notice=cancel-finished", status_code=303)
    if services.sink is None:
        raise HTTPException(503, "the API is not connected to Kafka yet; retry shortly")
    try:
        async with asyncio.timeout(PRODUCE_TIMEOUT_S):
            await services.sink.cancel(run_id, tenant=tenant, source="ui")
    except TimeoutError:
        raise HTTPException(503, "Kafka did not take the cancel in time; retry") from None
    return RedirectResponse(f"/ui/runs/{run_id}?notice=cancel-sent", status_code=303)


async def _input_of(services: ApiServices, record: RunRecord) -> tuple[Shown | None, str | None]:
    """The run's input, read back from its agent's request topic (the history does not keep
    it), or why it cannot be shown."""
    broker = services.broker
    if broker is None or record.kind == "stage":
        return None, "Not available here: this server has no broker, or the run is a pipeline's stage."
    try:
        found = await find_request(
            broker.bootstrap, broker.names.request(record.agent), result_of(record), timeout=15.0
        )
    except (ConfigError, TimeoutError):  # ServiceUnreachableError is a ConfigError
        return None, "Kafka did not give the request back in time; try again shortly."
    if found is None:
        return None, "The request is no longer on the agent's topic (past its retention)."
    return show_value(found.input), None


def _trace(services: ApiServices, run_id: str) -> RunTrace | None:
    try:
        trace = load_trace(services.history, run_id)
    except AmbiguousRunId:
        return None
    return trace if trace is not None and trace.run_id == run_id else None


async def _tenants(services: ApiServices, session: UiSession) -> list[str]:
    if not session.principal.admin:
        return []
    keys = await asyncio.to_thread(services.store.keys)
    return sorted({key.tenant for key in keys})


def _instant(text: str) -> datetime | None:
    """A `datetime-local` value (taken as UTC) or ISO 8601; None when empty or not a time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
