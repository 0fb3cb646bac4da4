"""Accepting one run: validate, claim the idempotency key, produce durably, maybe wait.

    input an object, callback_url public http(s)   else 422
    claim (tenant, Idempotency-Key) → body hash   same body: same run; another body: 409
    finished already?                              its result at once (an idempotent retry)
    produce to agent.<name>.requests (acks=all)    202 {run_id, queued} only after this
    ?wait=N                                        poll the history for the result

The run id of a keyed request is derived from the tenant and the key, so two tenants
using the same key get two runs, and a retry after a crash of this API is the same run.
A submission is recorded before it is produced: a concurrent duplicate waits for the
first to reach Kafka instead of producing again; a retry after a failed first attempt
produces it (and the worker skips a run id it already ran).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from app.api.keys import Principal
from app.api.problems import IDEMPOTENCY_CONFLICT, INVALID_INPUT, RUN_NOT_FOUND, UNAVAILABLE, ApiProblem
from app.api.services import ApiServices
from app.api.store import SubmissionRow
from app.api.views import RunCreate, RunView
from app.connectors.webhook import CallbackRefused, allow_list, check_callback_url
from app.contracts import RunRequest
from app.contracts.runs import run_id_for
from app.observability.history import AmbiguousRunId, RunRecord

#: How long producing one request may take before the client gets a 503.
PRODUCE_TIMEOUT_S = 15.0


def body_hash(agent: str, body: RunCreate) -> str:
    canonical = json.dumps({"agent": agent, **body.model_dump(mode="json")}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_body(body: RunCreate) -> dict[str, Any]:
    if not isinstance(body.input, dict):
        raise ApiProblem(INVALID_INPUT, f"input: must be a JSON object, not {_json_kind(body.input)}")
    return body.input


async def check_callback(services: ApiServices, url: str | None) -> None:
    """The webhook connector's SSRF rule, at submission: a callback URL that is not http(s)
    or resolves to a private, loopback, link-local or metadata address (not allow-listed
    in ferry.yaml) is refused now, not discovered at delivery."""
    if url is None:
        return
    try:
        await check_callback_url(url, allow_list(services.project.config.webhooks.allow_private))
    except CallbackRefused as exc:
        raise ApiProblem(INVALID_INPUT, f"callback_url: {exc.reason}") from None


async def accept(
    services: ApiServices, caller: Principal, agent: str, body: RunCreate, idempotency_key: str | None
) -> tuple[str, RunRecord | None]:
    """(run id, its recorded result if the run already finished)."""
    payload = check_body(body)
    await check_callback(services, body.callback_url)
    scoped_key = f"{caller.tenant}\x00{idempotency_key}" if idempotency_key else None
    run_id = run_id_for(agent, scoped_key)
    digest = body_hash(agent, body)
    claimed, ours = await asyncio.to_thread(
        services.store.claim,
        SubmissionRow(
            run_id=run_id,
            tenant=caller.tenant,
            agent=agent,
            idempotency_key=idempotency_key,
            body_sha256=digest,
            created_at=datetime.now(UTC),
            queued=False,
        ),
    )
    if claimed.body_sha256 != digest or claimed.tenant != caller.tenant:
        raise ApiProblem(
            IDEMPOTENCY_CONFLICT,
            f"Idempotency-Key {idempotency_key!r} was used for run {claimed.run_id} with another body; "
            "use a new key for a new request",
            run_id=claimed.run_id,
        )
    if not ours:  # a retry: the run may have finished, or be on its way already
        finished = await finished_run(services, run_id)
        if finished is not None or claimed.queued:
            return run_id, finished
        if await _queued_by_the_first(services, run_id):
            return run_id, None
    request = RunRequest.new(
        agent,
        payload,
        run_id=run_id,
        tenant=caller.tenant,
        idempotency_key=idempotency_key,
        callback_url=body.callback_url,
        context=body.context,
        trigger={"source": "api", "metadata": {"api_key": caller.key_id}},
    )
    if services.sink is None:
        raise ApiProblem(UNAVAILABLE, "the API is not connected to Kafka yet; retry shortly")
    try:
        async with asyncio.timeout(PRODUCE_TIMEOUT_S):
            await services.sink.submit(request, body.key)
    except BaseException as exc:
        await asyncio.shield(asyncio.to_thread(services.store.release, run_id))
        if isinstance(exc, TimeoutError):
            raise ApiProblem(
                UNAVAILABLE, f"Kafka did not take the request within {PRODUCE_TIMEOUT_S:g} s; retry with the same key"
            ) from None
        raise
    await asyncio.to_thread(services.store.mark_queued, run_id)
    return run_id, None


async def _queued_by_the_first(services: ApiServices, run_id: str) -> bool:
    """A concurrent duplicate waits for the first request to be produced rather than
    producing the run a second time; True once it is. False when the first attempt never
    got there (it failed, or its API process died): then this one produces it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PRODUCE_TIMEOUT_S
    while loop.time() < deadline:
        row = await asyncio.to_thread(services.store.submission, run_id)
        if row is not None and row.queued:
            return True
        if row is not None and (datetime.now(UTC) - row.created_at).total_seconds() > PRODUCE_TIMEOUT_S:
            return False
        await asyncio.sleep(services.settings.wait_poll_seconds)
    return False


async def finished_run(services: ApiServices, run_id: str) -> RunRecord | None:
    """The run's recorded result, by exact id only (the history also matches prefixes)."""
    try:
        record = await asyncio.to_thread(services.history.run, run_id)
    except AmbiguousRunId:
        return None
    return record if record is not None and record.run_id == run_id else None


async def wait_for_result(services: ApiServices, run_id: str, seconds: float, poll: float) -> RunRecord | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        record = await finished_run(services, run_id)
        if record is not None or loop.time() >= deadline:
            return record
        await asyncio.sleep(min(poll, max(0.0, deadline - loop.time())))


async def visible_run(services: ApiServices, caller: Principal, run_id: str) -> RunView:
    """The run if the caller's tenant owns it; another tenant's run is as absent as a missing one."""
    record = await finished_run(services, run_id)
    if record is not None and caller.may_see(record.tenant):
        return RunView.of(record)
    if record is None:
        submitted = await asyncio.to_thread(services.store.submission, run_id)
        if submitted is not None and caller.may_see(submitted.tenant):
            return RunView.queued(submitted.run_id, submitted.agent, submitted.tenant, submitted.created_at)
    raise ApiProblem(RUN_NOT_FOUND, f"no run {run_id!r} for this API key's tenant")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
