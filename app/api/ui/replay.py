"""Replay from the dashboard: one finished run, or a selection of dead letters and failed
runs (with a dry run first), optionally pinned to a deployment.

Through `app.streams.replay`, as `ferry replay` and `ferry dlq replay` do: a replay is a
new run of the original request (read back from the agent's topic, or carried by the
failed-runs record), linked to it by `trigger.metadata.replay_of`, produced by the API's
own producer. A replayed selection gets stable run ids, so replaying it twice runs each
failure once. A tenant's key sees and replays its own tenant's entries only; dead
letters that are not readable as a run request (no tenant) are shown to admin keys only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from app.api.services import ApiServices
from app.api.store import SubmissionRow
from app.api.submission import PRODUCE_TIMEOUT_S, finished_run
from app.api.ui.context import Page, Services, check_post, form_of
from app.api.ui.session import UiSession
from app.contracts import RunRequest, RunResult, RunStatus
from app.contracts.errors import ConfigError, ServiceUnreachableError
from app.deploy.errors import DeploymentError
from app.deploy.log import DeploymentLog
from app.observability.history import RunRecord
from app.streams.connect import topic_partitions
from app.streams.replay import Entry, dead_letters, failed_runs, failed_topic, find_request, replay_of, stable_replay_id

#: Longest a replay looks for the original request on its topic.
FIND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Outcome:
    """One line of a selection's replay (or dry run): what happened to an entry."""

    ref: str
    agent: str | None
    category: str
    new_run_id: str | None  # None: skipped
    note: str


def register(router: APIRouter) -> None:
    router.add_api_route("/runs/{run_id}/replay", replay_run, methods=["POST"])


async def replay_run(request: Request, run_id: str, session: Page, services: Services) -> Response:
    form = await form_of(request)
    check_post(request, session, form)
    record = await finished_run(services, run_id)
    if record is None or not session.principal.may_see(record.tenant):
        raise HTTPException(404, "no such finished run")
    broker = services.broker
    if broker is None or services.sink is None:
        raise HTTPException(503, "this server is not connected to Kafka for replays")
    if record.kind == "stage":
        raise HTTPException(400, f"a pipeline's stage: replay the pipeline's run {record.root_run_id} instead")
    try:
        deployment = await resolve_deployment(services, form.get("deployment", ""))
        original = result_of(record)
        found = await find_request(
            broker.bootstrap, broker.names.request(record.agent), original, timeout=FIND_TIMEOUT_S
        )
        if found is None:
            raise HTTPException(410, f"the request of run {run_id} is no longer on its topic (past its retention?)")
    except ServiceUnreachableError:
        raise HTTPException(503, "Kafka did not answer; try again shortly") from None
    except TimeoutError:
        raise HTTPException(504, f"the request of run {run_id} was not found on its topic in time") from None
    replay = replay_of(found, deployment=deployment, via="dashboard")
    await _submit(services, replay)
    return RedirectResponse(f"/ui/runs/{replay.run_id}?notice=replayed", status_code=303)


def result_of(record: RunRecord) -> RunResult:
    """What `find_request` needs of a finished run (its id, agent and start), from the history."""
    return RunResult(
        run_id=record.run_id,
        agent=record.agent,
        status=RunStatus(record.status),
        started_at=record.started_at,
        ended_at=record.ended_at,
        duration_ms=record.duration_ms,
    )


async def resolve_deployment(services: ApiServices, given: str) -> str | None:
    """The full version of a deployment given by a unique prefix; None for the active one."""
    given = given.strip()
    if not given or services.broker is None:
        return None
    async with DeploymentLog(services.broker.bootstrap, services.broker.names) as log:
        book = await log.read()
    try:
        return book.get(given).version
    except DeploymentError as exc:
        raise HTTPException(404, str(exc)) from None


async def _submit(services: ApiServices, replay: RunRequest) -> None:
    """Produce the replay, recorded as a submission first so that its page shows it in flight."""
    assert services.sink is not None
    row = SubmissionRow(
        run_id=replay.run_id,
        tenant=replay.tenant,
        agent=replay.agent,
        idempotency_key=None,
        body_sha256="replay",
        created_at=replay.created_at,
        queued=False,
    )
    await asyncio.to_thread(services.store.claim, row)
    try:
        async with asyncio.timeout(PRODUCE_TIMEOUT_S):
            await services.sink.submit(replay)
    except TimeoutError:
        raise HTTPException(503, "Kafka did not take the replay in time; retry") from None
    await asyncio.to_thread(services.store.mark_queued, replay.run_id)


async def entries(services: ApiServices, session: UiSession, since: datetime | None) -> list[Entry] | None:
    """Dead letters and failed runs the session may see, oldest first (None: no broker)."""
    broker = services.broker
    if broker is None:
        return None
    try:
        found = await dead_letters(broker.bootstrap, broker.names, since=since)
    except ServiceUnreachableError:
        raise
    except ConfigError:  # no runs.dlq yet: no worker ever refused a record here
        found = []
    durability = services.project.config.durability
    for agent in sorted(name for name in services.project.agents if durability.failed_runs_for(name)):
        try:
            await topic_partitions(broker.bootstrap, failed_topic(broker.names, agent))
        except ServiceUnreachableError:
            raise
        except ConfigError:
            continue  # nothing of this agent ever failed that way: the topic is made on first use
        found.extend(await failed_runs(broker.bootstrap, broker.names, agent, since=since))
    visible = [e for e in found if (since is None or e.at >= since) and _visible(e, session)]
    return sorted(visible, key=lambda e: e.at)


def _visible(entry: Entry, session: UiSession) -> bool:
    if session.principal.admin:
        return True
    request = entry.replayable()
    return isinstance(request, RunRequest) and request.tenant == session.principal.tenant


async def replay_selection(
    services: ApiServices,
    session: UiSession,
    listed: list[Entry],
    refs: set[str],
    deployment: str | None,
    dry_run: bool,
) -> list[Outcome]:
    """Replay (or say what a replay would do for) the listed entries whose ref was ticked."""
    outcomes = []
    for entry in listed:
        if entry.ref not in refs:
            continue
        request = entry.replayable()
        if isinstance(request, str):
            outcomes.append(Outcome(entry.ref, entry.agent, entry.category, None, f"skipped: {request}"))
            continue
        replay = replay_of(
            request, deployment=deployment, run_id=stable_replay_id(request.run_id, deployment), via="dashboard"
        )
        if not dry_run:
            await _submit(services, replay)
        target = f" on {deployment}" if deployment else " on the active deployment"
        verb = "would run again" if dry_run else "replayed"
        outcomes.append(Outcome(entry.ref, request.agent, entry.category, replay.run_id, f"{verb}{target}"))
    return outcomes


async def selection_form(request: Request) -> tuple[dict[str, str], set[str]]:
    """The failures page's form: its single fields, and every ticked entry."""
    body = (await request.body()).decode("utf-8", errors="replace")
    values = parse_qs(body, keep_blank_values=True)
    return {name: items[0] for name, items in values.items()}, set(values.get("ref", []))
