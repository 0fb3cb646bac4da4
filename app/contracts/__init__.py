"""Wire formats shared by every layer: what travels on Ferry's topics and APIs.

Each model carries a `schema_version` so that old messages in a topic stay readable
after a change; readers accept every version they know.
"""

from app.contracts.alerts import AlertKind, SpendAlert
from app.contracts.approvals import ApprovalRecord
from app.contracts.replies import ReplyEvent
from app.contracts.runs import (
    ApprovalDecision,
    ChatTurn,
    PipelineContext,
    RunError,
    RunRequest,
    RunResult,
    RunStatus,
    Trigger,
    Usage,
    document_input,
)
from app.contracts.spans import SpanEvent, SpanKind, SpanStatus

__all__ = [
    "AlertKind",
    "ApprovalDecision",
    "ApprovalRecord",
    "ChatTurn",
    "PipelineContext",
    "ReplyEvent",
    "RunError",
    "RunRequest",
    "RunResult",
    "RunStatus",
    "SpanEvent",
    "SpanKind",
    "SpanStatus",
    "SpendAlert",
    "Trigger",
    "Usage",
    "document_input",
]
