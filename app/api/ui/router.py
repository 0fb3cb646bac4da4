"""`ui_router()`: the dashboard under /ui, for `create_app` to include.

Pages are rendered on the server (Jinja2, autoescaped) with a little JavaScript for the
live list and the charts; the one library, Chart.js, is vendored in `static/vendor/`
and served from here, never from a CDN. The pages are not part of the OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from app.api.ui import approvals, deployments, insight, login, replay, runs
from app.api.ui.context import PACKAGE_DIR, new_context
from app.api.ui.session import SessionSigner

STATIC_DIR = PACKAGE_DIR / "static"
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def ui_router(signer: SessionSigner | None = None) -> APIRouter:
    context = new_context(signer)
    router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(context.bind)])
    files = {
        path.relative_to(STATIC_DIR).as_posix(): path
        for path in STATIC_DIR.rglob("*")
        if path.is_file() and path.suffix in _MEDIA_TYPES
    }

    async def static(name: str) -> FileResponse:
        """Only the files shipped in static/, by exact name: no path is ever built from the URL."""
        path = files.get(name)
        if path is None:
            raise HTTPException(404, "no such file")
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)

    router.add_api_route("/static/{name:path}", static, methods=["GET"])
    login.register(router)
    runs.register(router)
    insight.register(router)
    approvals.register(router)
    deployments.register(router)
    replay.register(router)
    return router
