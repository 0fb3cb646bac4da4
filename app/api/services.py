"""What the API is given to work with: injected into `create_app`, reached through the app's state.

Nothing here is process-wide: two apps in one process (tests do that) have their own
stores, producer and rate limiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fastapi import Request

from app.api.ratelimit import RateLimiter
from app.api.settings import ApiSettings
from app.api.store import ApiStore
from app.contracts import ApprovalRecord, ReplyEvent, RunRequest
from app.observability.history import HistoryStore
from app.project.project import Project

if TYPE_CHECKING:
    from app.streams.naming import TopicNames


class ReplyWaiter(Protocol):
    """Where this instance's live callers get their runs' events: `app.streams.ReplyInbox`."""

    topic: str

    def expect(self, run_id: str) -> AbstractContextManager[asyncio.Queue[ReplyEvent]]: ...


class ApprovalAccess(Protocol):
    """Runs waiting for a human, and deciding them: `app.streams.approvals` (book and desk)."""

    def pending(self, tenant: str | None = None) -> list[ApprovalRecord]: ...

    def record(self, run_id: str) -> ApprovalRecord | None: ...

    async def decide(
        self, record: ApprovalRecord, *, approved: bool, by: str, reason: str | None
    ) -> ApprovalRecord: ...


@dataclass(frozen=True)
class Broker:
    """Where `ferry api` reaches Kafka: bootstrap servers and the (prefixed) topic names."""

    bootstrap: str
    names: TopicNames


class RequestSink(Protocol):
    """Where accepted requests go: `app.streams.Submitter` (acks=all) in production."""

    async def submit(self, request: RunRequest, key: str | None = None) -> None: ...

    async def cancel(self, run_id: str, *, tenant: str | None = None, source: str = "cli") -> None: ...


@dataclass
class ApiServices:
    project: Project
    history: HistoryStore
    store: ApiStore
    #: Opened by the app's lifespan: the producer lives as long as the server.
    open_sink: Callable[[], AbstractAsyncContextManager[RequestSink]]
    # Set by `create_app` from its settings; the sink by the lifespan.
    settings: ApiSettings = field(default_factory=ApiSettings, init=False)
    limiter: RateLimiter | None = field(default=None, init=False)
    sink: RequestSink | None = field(default=None, init=False)
    #: None: no chat (the server was built without a reply inbox).
    replies: ReplyWaiter | None = None
    #: None: no approvals endpoints (the server was built without them).
    approvals: ApprovalAccess | None = None
    #: The broker and topic names this API produces to, for the dashboard's pages that read
    #: Kafka themselves (deployments, replay, the DLQ); None: those pages are not connected.
    broker: Broker | None = None


def services_of(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services
