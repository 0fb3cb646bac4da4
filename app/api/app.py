"""`create_app(settings, services)`: the FastAPI app of `ferry api`, everything it uses injected.

The lifespan opens the request producer (acks=all) before the first request is served
and closes it after the last; the stores are the caller's to open and close. OpenAPI is
at `/openapi.json`, its docs page at `/docs`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.body_limit import BodyLimit
from app.api.problems import install_problem_handlers
from app.api.ratelimit import RateLimiter
from app.api.routes import agents, approvals, chat, runs
from app.api.services import ApiServices
from app.api.settings import ApiSettings
from app.api.ui import ui_router

API_VERSION = "1"


def create_app(settings: ApiSettings, services: ApiServices) -> FastAPI:
    services.settings = settings
    services.limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services.open_sink() as sink:
            services.sink = sink
            try:
                yield
            finally:
                services.sink = None

    app = FastAPI(
        title="Ferry API",
        version=API_VERSION,
        description="Submit runs to Ferry's agents and read their results, usage and traces.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(runs.router)
    app.include_router(agents.router)
    app.include_router(chat.router)
    app.include_router(approvals.router)
    app.include_router(ui_router())
    return app
