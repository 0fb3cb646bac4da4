"""Approvals: the runs of the caller's tenant that wait for a human, and deciding them.

    GET  /v1/approvals                     what waits, oldest first
    POST /v1/approvals/{run_id}/approve    {"reason": "…"} optional
    POST /v1/approvals/{run_id}/reject     {"reason": "…"} required

Another tenant's run is as absent as a missing one (404); a run that is not waiting any
more (decided, expired) is a 409. The decider is recorded as the API key's id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.auth import Caller, Services
from app.api.problems import NOT_FOUND, RUN_FINISHED, UNAVAILABLE, ApiProblem
from app.api.services import ApprovalAccess
from app.contracts import ApprovalRecord

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])


class ApprovalView(BaseModel):
    run_id: str
    agent: str
    tenant: str
    tool: str
    arguments: dict[str, Any]
    message: str | None
    status: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    reason: str | None

    @classmethod
    def of(cls, record: ApprovalRecord) -> ApprovalView:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class ApprovalList(BaseModel):
    approvals: list[ApprovalView]


class Decision(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


def _desk(services: Services) -> ApprovalAccess:
    if services.approvals is None:
        raise ApiProblem(UNAVAILABLE, "this API serves no approvals (started without the approvals topic)")
    return services.approvals


def _waiting(services: Services, caller: Caller, run_id: str) -> ApprovalRecord:
    record = _desk(services).record(run_id)
    if record is None or not caller.may_see(record.tenant):
        raise ApiProblem(NOT_FOUND, f"no run {run_id!r} of this API key's tenant asked for an approval")
    if record.status != "pending":
        raise ApiProblem(RUN_FINISHED, f"run {run_id} is not waiting any more: it was {record.status}")
    return record


@router.get("", response_model=ApprovalList)
async def list_approvals(caller: Caller, services: Services) -> ApprovalList:
    tenant = None if caller.admin else caller.tenant
    return ApprovalList(approvals=[ApprovalView.of(r) for r in _desk(services).pending(tenant)])


@router.post("/{run_id}/approve", response_model=ApprovalView)
async def approve(run_id: str, caller: Caller, services: Services, body: Decision | None = None) -> ApprovalView:
    record = _waiting(services, caller, run_id)
    reason = body.reason if body is not None else None
    decided = await _desk(services).decide(record, approved=True, by=f"api-key:{caller.key_id}", reason=reason)
    return ApprovalView.of(decided)


@router.post("/{run_id}/reject", response_model=ApprovalView)
async def reject(run_id: str, body: Rejection, caller: Caller, services: Services) -> ApprovalView:
    record = _waiting(services, caller, run_id)
    decided = await _desk(services).decide(record, approved=False, by=f"api-key:{caller.key_id}", reason=body.reason)
    return ApprovalView.of(decided)
