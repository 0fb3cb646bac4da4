"""The approvals page: tool calls waiting for a human, with their arguments; approve or reject.

It reads and decides through the API's approvals (`ApiServices.approvals`: the book that
follows `ferry.approvals` and the desk that sends a decided run back to its workers), as
`/v1/approvals` does. A tenant's key sees and decides its own tenant's runs only; the
decider is recorded as `ui:<key id>`. A rejection needs a reason (the model may see it).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from app.api.ui.context import Page, Services, check_post, form_of, render

#: Longest reason kept (as the API's).
MAX_REASON_CHARS = 2000
NOTICES = {
    "approved": "Approved: the run goes back to its workers and calls the tool.",
    "rejected": "Rejected: the run goes back to its workers with the reason.",
    "gone": "That run is not waiting any more (decided or expired).",
    "reason": "A rejection needs a reason.",
}


def register(router: APIRouter) -> None:
    router.add_api_route("/approvals", approvals_page, methods=["GET"])
    router.add_api_route("/approvals/{run_id}/decide", decide, methods=["POST"])


async def approvals_page(request: Request, session: Page, services: Services) -> Response:
    desk = services.approvals
    waiting = desk.pending(session.tenant_scope) if desk is not None else []
    now = datetime.now(UTC)
    rows = [
        {
            "record": record,
            "arguments": json.dumps(record.arguments, indent=2, ensure_ascii=False, default=str),
            "seconds_left": max(0, int((record.expires_at - now).total_seconds())),
        }
        for record in waiting
    ]
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return render(request, "approvals.html", session, connected=desk is not None, rows=rows, notice=notice)


async def decide(request: Request, run_id: str, session: Page, services: Services) -> Response:
    form = await form_of(request)
    check_post(request, session, form)
    desk = services.approvals
    if desk is None:
        raise HTTPException(503, "this server serves no approvals")
    record = desk.record(run_id)
    if record is None or not session.principal.may_see(record.tenant):
        raise HTTPException(404, "no such run waits for an approval")
    if record.status != "pending":
        return RedirectResponse("/ui/approvals?notice=gone", status_code=303)
    approved = form.get("decision") == "approve"
    reason = form.get("reason", "").strip()[:MAX_REASON_CHARS] or None
    if not approved and reason is None:
        return RedirectResponse("/ui/approvals?notice=reason", status_code=303)
    await desk.decide(record, approved=approved, by=f"ui:{session.principal.key_id}", reason=reason)
    return RedirectResponse(f"/ui/approvals?notice={'approved' if approved else 'rejected'}", status_code=303)
