"""Runs: submit one (`POST /v1/agents/{agent}/runs`), read one, list them, trace one, cancel one."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from app.api.auth import Caller, Services
from app.api.problems import RUN_FINISHED, RUN_NOT_FOUND, UNAVAILABLE, ApiProblem
from app.api.routes.agents import known_agent
from app.api.run_pages import PageQuery, run_page
from app.api.submission import PRODUCE_TIMEOUT_S, accept, visible_run, wait_for_result
from app.api.views import CancelAccepted, RunAccepted, RunCreate, RunPage, RunView
from app.observability.history import AmbiguousRunId
from app.observability.history.trace_tree import load_trace

router = APIRouter(tags=["runs"])

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": RunView, "description": "The run had already finished (or finished within `wait`)."},
    401: _PROBLEM,
    404: _PROBLEM,
    409: _PROBLEM,
    413: _PROBLEM,
    422: _PROBLEM,
    429: _PROBLEM,
    503: _PROBLEM,
}


@router.post("/v1/agents/{agent}/runs", status_code=202, response_model=RunAccepted, responses=_SUBMIT_RESPONSES)
async def submit_run(
    agent: str,
    body: RunCreate,
    caller: Caller,
    services: Services,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    wait: Annotated[float, Query(ge=0, description="Seconds to wait for the result inline.")] = 0,
) -> Response:
    """Queue a run. 202 once the request is durably in Kafka; 200 with the run when it is
    already finished (an idempotent retry) or finishes within `wait` seconds."""
    known_agent(services, agent)
    run_id, finished = await accept(services, caller, agent, body, idempotency_key)
    if finished is None and wait > 0:
        seconds = min(wait, services.settings.max_wait_seconds)
        finished = await wait_for_result(services, run_id, seconds, services.settings.wait_poll_seconds)
    if finished is not None:
        return JSONResponse(RunView.of(finished).model_dump(mode="json"), status_code=200)
    return JSONResponse(
        RunAccepted(run_id=run_id).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/runs/{run_id}"},
    )


@router.get("/v1/runs/{run_id}", response_model=RunView, responses={401: _PROBLEM, 404: _PROBLEM, 429: _PROBLEM})
async def get_run(run_id: str, caller: Caller, services: Services) -> RunView:
    """A run's status, output, error, usage and timings (`queued` until its result is recorded)."""
    return await visible_run(services, caller, run_id)


@router.get("/v1/runs", response_model=RunPage, responses={401: _PROBLEM, 422: _PROBLEM, 429: _PROBLEM})
async def list_runs(
    caller: Caller,
    services: Services,
    agent: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> RunPage:
    """The tenant's finished runs, newest first; follow `next_cursor` for older ones."""
    query = PageQuery(
        tenant=None if caller.admin else caller.tenant,
        agent=agent,
        status=status,
        since=since,
        limit=min(limit, services.settings.page_size_max),
        cursor=cursor,
    )
    runs, next_cursor = await asyncio.to_thread(run_page, services.history, query)
    return RunPage(runs=[RunView.of(r) for r in runs], next_cursor=next_cursor)


@router.get("/v1/runs/{run_id}/trace", responses={401: _PROBLEM, 404: _PROBLEM, 429: _PROBLEM})
async def get_trace(run_id: str, caller: Caller, services: Services) -> dict[str, Any]:
    """The run's spans as a tree (a pipeline's stages under it), from the history."""
    await visible_run(services, caller, run_id)  # 404 unless the caller's tenant owns it
    try:
        trace = await asyncio.to_thread(load_trace, services.history, run_id)
    except AmbiguousRunId:
        trace = None
    if trace is None or trace.run_id != run_id:
        raise ApiProblem(RUN_NOT_FOUND, f"no trace recorded for run {run_id!r} yet")
    return trace.as_json()


@router.post(
    "/v1/runs/{run_id}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    responses={401: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 429: _PROBLEM, 503: _PROBLEM},
)
async def cancel_run(run_id: str, caller: Caller, services: Services) -> JSONResponse:
    """Cancel a queued or running run: 202 once the cancel is durably in Kafka. A queued run
    never starts; a running one stops within about a second, `cancelled`, keeping its usage so
    far. 409 when the run has already finished (its status says how)."""
    run = await visible_run(services, caller, run_id)  # 404 unless the caller's tenant owns it
    if run.status != "queued":
        raise ApiProblem(RUN_FINISHED, f"run {run_id!r} has already finished ({run.status})", run_status=run.status)
    if services.sink is None:
        raise ApiProblem(UNAVAILABLE, "the API is not connected to Kafka yet; retry shortly")
    try:
        async with asyncio.timeout(PRODUCE_TIMEOUT_S):
            await services.sink.cancel(run_id, tenant=run.tenant, source="api")
    except TimeoutError:
        raise ApiProblem(UNAVAILABLE, f"Kafka did not take the cancel within {PRODUCE_TIMEOUT_S:g} s; retry") from None
    return JSONResponse(
        CancelAccepted(run_id=run_id).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/runs/{run_id}"},
    )
