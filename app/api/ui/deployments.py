"""The deployments page: versions with their commit and message, runs and error rate per
version, and activate / canary / rollback with a confirmation (admin keys only).

It reads `ferry.deployments` whole and writes the active state with a `DeploymentLog`
per request on the API's broker, as `ferry deployments`, `ferry activate` and `ferry
rollback` do: workers switch within about a second. A tenant's key
sees the versions and its own tenant's runs per version, and cannot change anything.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.api.services import ApiServices
from app.api.ui.context import Page, Services, check_post, form_of, render
from app.contracts.errors import ServiceUnreachableError
from app.deploy.errors import DeploymentError
from app.deploy.log import DeploymentLog
from app.deploy.records import ActiveState, Deployment
from app.observability.history.projection import PIPELINE
from app.observability.history.schema import RunRow

NOTICES = {
    "activated": "Activated: new runs use it; workers switch within about a second.",
    "canary": "Canary set: that share of new runs use it, the rest the active version.",
    "rolled-back": "Rolled back to the version active before.",
    "nothing": "Nothing to roll back to: no version was active before this one.",
}


@dataclass(frozen=True)
class VersionRow:
    deployment: Deployment
    role: str  # active, canary N %, previous, or ''
    runs: int
    failed: int

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.runs if self.runs else None


def register(router: APIRouter) -> None:
    router.add_api_route("/deployments", deployments_page, methods=["GET"])
    router.add_api_route("/deployments/change", change, methods=["POST"])


async def deployments_page(request: Request, session: Page, services: Services) -> Response:
    opened = open_log(services)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    if opened is None:
        return render(request, "deployments.html", session, connected=False, rows=[], state=None, notice=notice)
    try:
        async with opened as log:
            book = await log.read()
    except ServiceUnreachableError as exc:
        return render(
            request, "deployments.html", session, connected=True, rows=[], state=None, notice=notice, error=str(exc)
        )

    def served() -> dict[str, tuple[int, int]]:
        failed = func.sum(case((RunRow.status != "completed", 1), else_=0))
        statement = (
            select(RunRow.deployment, func.count(), failed)
            .where(RunRow.deployment.is_not(None), RunRow.kind != PIPELINE)
            .group_by(RunRow.deployment)
        )
        if session.tenant_scope is not None:
            statement = statement.where(RunRow.tenant == session.tenant_scope)
        with Session(services.history.engine) as db:
            return {str(v): (int(n), int(f or 0)) for v, n, f in db.execute(statement)}

    counts = await asyncio.to_thread(served)
    state = book.state
    rows = [
        VersionRow(d, _role(d.version, state), *counts.get(d.version, (0, 0)))
        for d in sorted(book.deployments.values(), key=lambda d: d.created_at, reverse=True)
    ]
    return render(
        request, "deployments.html", session, connected=True, rows=rows, state=state, notice=notice, error=None
    )


async def change(request: Request, session: Page, services: Services) -> Response:
    form = await form_of(request)
    check_post(request, session, form)
    if not session.principal.admin:
        raise HTTPException(403, "only an admin key changes deployments")
    opened = open_log(services)
    if opened is None:
        raise HTTPException(503, "this server is not connected to the deployments topic")
    action, version = form.get("action", ""), form.get("version", "")
    async with opened as log:
        book = await log.read()
        state = book.state
        try:
            if action == "rollback":
                after = state.rolled_back()
                if after is None:
                    return RedirectResponse("/ui/deployments?notice=nothing", status_code=303)
                notice = "rolled-back"
            elif action == "activate":
                after = state.activate(book.get(version).version, reason="activate (dashboard)")
                notice = "activated"
            elif action == "canary":
                target = book.get(version).version
                percent = _percent(form.get("percent", ""))
                if target == state.active:
                    raise HTTPException(400, "a canary is another version than the active one")
                after = state.with_canary(target, percent, reason="canary (dashboard)")
                notice = "canary"
            else:
                raise HTTPException(400, "unknown action")
        except DeploymentError as exc:
            raise HTTPException(404, str(exc)) from None
        await log.set_state(after)
    return RedirectResponse(f"/ui/deployments?notice={notice}", status_code=303)


def open_log(services: ApiServices) -> AbstractAsyncContextManager[DeploymentLog] | None:
    """`ferry.deployments` through the API's broker (None: a server without one)."""
    broker = services.broker
    return DeploymentLog(broker.bootstrap, broker.names) if broker is not None else None


def _role(version: str, state: ActiveState) -> str:
    if version == state.active:
        return "active"
    if state.canary is not None and version == state.canary.version:
        return f"canary {state.canary.percent:g} %"
    if state.previous and version == state.previous[-1]:
        return "previous"
    return ""


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise HTTPException(400, "the canary's share is a number of percent") from None
    if not 0 < value < 100:
        raise HTTPException(400, "a canary serves more than 0 and less than 100 % of new runs")
    return value
