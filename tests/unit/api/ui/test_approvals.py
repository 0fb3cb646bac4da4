"""The approvals page: what waits, scoped to the tenant; approve, reject with a reason, CSRF."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from app.api import ApiStore, create_key
from app.contracts import ApprovalRecord, RunRequest
from app.observability.history import HistoryStore
from tests.unit.api.ui.conftest import log_in


class FakeApprovals:
    def __init__(self, *records: ApprovalRecord) -> None:
        self.records = {r.run_id: r for r in records}
        self.decisions: list[tuple[str, bool, str, str | None]] = []

    def pending(self, tenant: str | None = None) -> list[ApprovalRecord]:
        return [r for r in self.records.values() if r.status == "pending" and tenant in (None, r.tenant)]

    def record(self, run_id: str) -> ApprovalRecord | None:
        return self.records.get(run_id)

    async def decide(self, record: ApprovalRecord, *, approved: bool, by: str, reason: str | None) -> ApprovalRecord:
        self.decisions.append((record.run_id, approved, by, reason))
        decided = record.model_copy(update={"status": "approved" if approved else "rejected"})
        self.records[record.run_id] = decided
        return decided


def waiting(run_id: str, tenant: str) -> ApprovalRecord:
    now = datetime.now(UTC)
    return ApprovalRecord(
        run_id=run_id,
        agent="payer",
        tenant=tenant,
        step="0.call_1",
        tool="pay",
        arguments={"amount": 9.5, "note": "<img src=x onerror=alert(1)>", "card_number": "[REDACTED]"},
        message="Payments need a human",
        requested_at=now,
        expires_at=now + timedelta(minutes=10),
        topic="agent.payer.requests",
        request=RunRequest.new("payer", {"message": "pay"}, run_id=run_id, tenant=tenant),
    )


def test_a_tenant_sees_and_decides_its_own_waiting_calls_only(ui: TestClient, history: HistoryStore) -> None:
    fake = FakeApprovals(waiting("run-acme", "acme"), waiting("run-globex", "globex"))
    ui.app.state.services.approvals = fake  # type: ignore[attr-defined]
    key = create_key(ApiStore(history.engine), "acme")
    log_in(ui, key.token)
    page = ui.get("/ui/approvals").text
    assert "run-acme" in page and "run-globex" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "[REDACTED]" in page and "Payments need a human" in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    token = csrf.group(1)

    foreign = ui.post("/ui/approvals/run-globex/decide", data={"csrf": token, "decision": "approve"})
    assert foreign.status_code == 404
    forged = ui.post("/ui/approvals/run-acme/decide", data={"csrf": "x", "decision": "approve"})
    assert forged.status_code == 403
    unreasoned = ui.post("/ui/approvals/run-acme/decide", data={"csrf": token, "decision": "reject", "reason": " "})
    assert "needs a reason" in unreasoned.text
    assert fake.decisions == []

    rejected = ui.post(
        "/ui/approvals/run-acme/decide", data={"csrf": token, "decision": "reject", "reason": "too much"}
    )
    assert "Rejected" in rejected.text
    assert fake.decisions == [("run-acme", False, f"ui:{key.key_id}", "too much")]
    assert "No tool call is waiting" in ui.get("/ui/approvals").text


def test_without_approvals_the_page_says_so(ui: TestClient, token: str) -> None:
    log_in(ui, token)
    assert "started without the approvals topic" in ui.get("/ui/approvals").text
