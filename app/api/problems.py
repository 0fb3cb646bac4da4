"""Errors as RFC 9457 problem documents: a stable `type` per kind of refusal, never a trace.

Every refusal the API makes is an `ApiProblem` carrying one `ProblemType`; handlers turn
it (and FastAPI's own validation errors, and anything unexpected) into
`application/problem+json`. The catch-all handler logs the exception and sends a
generic 500, so no stack trace or internal message ever reaches a client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.contracts.errors import BadInputError

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://ferry.dev/problems/"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        return TYPE_BASE + self.slug


UNAUTHORIZED = ProblemType("unauthorized", "Missing or invalid API key", 401)
FORBIDDEN = ProblemType("forbidden", "Not allowed for this API key", 403)
AGENT_NOT_FOUND = ProblemType("agent-not-found", "No such agent", 404)
RUN_NOT_FOUND = ProblemType("run-not-found", "No such run", 404)
NOT_FOUND = ProblemType("not-found", "No such resource", 404)
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", "Method not allowed", 405)
IDEMPOTENCY_CONFLICT = ProblemType("idempotency-conflict", "Idempotency key reused with another body", 409)
RUN_FINISHED = ProblemType("run-finished", "The run has already finished", 409)
BODY_TOO_LARGE = ProblemType("body-too-large", "Request body too large", 413)
INVALID_INPUT = ProblemType("invalid-input", "The request is not valid", 422)
RATE_LIMITED = ProblemType("rate-limited", "Too many requests", 429)
INTERNAL = ProblemType("internal", "Internal error", 500)
UNAVAILABLE = ProblemType("unavailable", "A service the API needs is unavailable", 503)

_BY_STATUS = {p.status: p for p in (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, BODY_TOO_LARGE)}


class ApiProblem(BadInputError):
    """A request the API refuses, with what to tell the client (`detail`) and extra headers."""

    def __init__(self, kind: ProblemType, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_body(kind: ProblemType, detail: str, instance: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind.uri, "title": kind.title, "status": kind.status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    kind: ProblemType, detail: str, request: Request | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem_body(kind, detail, instance, **extra), status_code=kind.status, headers=headers, media_type=MEDIA_TYPE
    )


def validation_reason(errors: list[Any]) -> str:
    """FastAPI's validation errors as one readable sentence: where, and what is wrong."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(exc.kind, exc.detail, request, exc.headers, **exc.extra)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(INVALID_INPUT, validation_reason(list(exc.errors())), request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = _BY_STATUS.get(exc.status_code, ProblemType("http-error", "HTTP error", exc.status_code))
        detail = exc.detail if isinstance(exc.detail, str) else kind.title
        return problem_response(kind, detail, request, dict(exc.headers or {}))

    async def on_anything(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return problem_response(INTERNAL, "the server failed to answer this request; it has been logged", request)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_anything)
